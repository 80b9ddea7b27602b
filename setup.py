# Only what pyproject.toml cannot say: cffi_modules has no pyproject key.
from setuptools import setup

setup(cffi_modules=["csrc/build_fastpath.py:ffibuilder"])
