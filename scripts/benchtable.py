"""scripts/bench.py's results as a table: each system against veth, c
against python and the libnats relay, each tunnel against the libnats echo
floor through its own server, and the daemons' idle CPU."""

from __future__ import annotations


def compare(results: dict) -> str:
    """c against python, and c against the libnats relay ceiling."""
    lines = []
    for suffix in ("", "-sealed", "-no-offload"):
        c, py = results.get(f"c{suffix}"), results.get(f"python{suffix}")
        if not c or not py:
            continue

        def ratio(key: str, r1: dict = c, r2: dict = py) -> str:
            a, b = r1.get(key), r2.get(key)
            return f"{a / b:.2f}x" if a and b else "-"

        cpu_c = c.get("cpu_s_per_gb", {}).get("daemons")
        cpu_py = py.get("cpu_s_per_gb", {}).get("daemons")
        cpu = f"{cpu_c / cpu_py:.2f}x" if cpu_c and cpu_py else "-"
        lines.append(
            f"c{suffix} / python{suffix}: ping(10 ms) {ratio('ping_avg_ms')}, "
            f"ping(200 ms) {ratio('ping200_avg_ms')}, UDP64 {ratio('udp64_kpps')}, "
            f"TCP {ratio('tcp_gbit_median')}, daemon CPU/GB {cpu}"
        )
    c, ceiling = results.get("c"), results.get("libnats")
    if c and ceiling and ceiling.get("tcp_gbit_median"):
        share = c["tcp_gbit_median"] / ceiling["tcp_gbit_median"]
        lines.append(f"c TCP / libnats relay ceiling: {share:.2f}x")
    for name, r in results.items():
        parts = [
            f"{label} {r[mine]:.3f} / {r[floor]:.3f} = {r[mine] / r[floor]:.2f}x"
            for label, mine, floor in (
                ("10 ms", "ping_avg_ms", "floor_avg_ms"),
                ("200 ms", "ping200_avg_ms", "floor200_avg_ms"),
            )
            if r.get(mine) and r.get(floor)
        ]
        if parts:
            lines.append(f"{name} ping / libnats echo floor via its server: " + ", ".join(parts))
    for name, r in results.items():
        if r.get("idle_cpu"):
            i = r["idle_cpu"]
            lines.append(
                f"{name} daemon CPU, % of a core: idle LAN {i['idle_pct']:.2f}, "
                f"one ping a second {i['ping1s_pct']:.2f}"
            )
    return "\n".join(lines)


def table(results: dict) -> str:
    veth = results.get("veth", {})
    base = veth.get("tcp_gbit_median")
    rows = [
        f"{'system':<12} {'TCP Gbit/s (med min-max)':<26} {'x veth':>7} {'UDP64 kpps':>10} "
        f"{'x veth':>7} {'ping avg/min ms':>16} {'ping200':>8}  CPU s/GB"
    ]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"{name:<12} {r['error']}")
            continue
        tcp = r.get("tcp_gbit_median")
        rng = (
            f"{tcp:.2f} ({r['tcp_gbit_min']:.2f}-{r['tcp_gbit_max']:.2f})"
            if "tcp_gbit_min" in r
            else f"{tcp:.2f}"
        )
        ratio = f"{tcp / base:.3f}" if base else "-"
        udp = r.get("udp64_kpps")
        uratio = f"{udp / veth['udp64_kpps']:.3f}" if udp and veth.get("udp64_kpps") else "-"
        png = f"{r['ping_avg_ms']:.3f}/{r['ping_min_ms']:.3f}" if r.get("ping_avg_ms") else "-"
        idle = f"{r['ping200_avg_ms']:.3f}" if r.get("ping200_avg_ms") else "-"
        cpu = ", ".join(f"{k} {v}" for k, v in r.get("cpu_s_per_gb", {}).items()) or "-"
        rows.append(
            f"{name:<12} {rng:<26} {ratio:>7} {udp or 0:>10.1f} {uratio:>7} {png:>16} "
            f"{idle:>8}  {cpu}"
        )
    prof = [
        f"{name} daemons' CPU s/GB by thread: "
        + ", ".join(f"{t} {v}" for t, v in r["threads_s_per_gb"].items())
        for name, r in results.items()
        if r.get("threads_s_per_gb")
    ]
    return "\n".join(rows + [compare(results)] + prof)
