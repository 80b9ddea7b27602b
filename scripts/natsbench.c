/* libnats floors for scripts/bench.py (compiled by it, with -lnats):
 *
 *   natsbench relay URL SECONDS     one publisher -> one subscriber of 64 KiB
 *                                   messages: prints "bytes seconds"
 *   natsbench echo URL COUNT MS     request -> echo -> reply round trips, MS
 *                                   apart: prints "avg_ms min_ms"
 *
 * What a datapath on libnats could reach at best on this machine, through
 * the same kind of server. */
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_llong received;

static void count(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
    (void)nc; (void)sub; (void)c;
    atomic_fetch_add(&received, natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

static void echo(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
    (void)sub; (void)c;
    natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

static natsConnection *connect(const char *url, int asap)
{
    natsOptions *o;
    natsConnection *nc;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url);
    natsOptions_SetSendAsap(o, asap);
    natsOptions_SetIOBufSize(o, 256 * 1024);
    if (natsConnection_Connect(&nc, o) != NATS_OK) {
        fprintf(stderr, "natsbench: cannot connect to %s\n", url);
        exit(1);
    }
    natsOptions_Destroy(o);
    return nc;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    nats_Open(-1);
    if (!strcmp(argv[1], "relay")) {
        natsConnection *sc = connect(argv[2], 0), *pc = connect(argv[2], 0);
        natsSubscription *sub;
        natsConnection_Subscribe(&sub, sc, "bench.relay", count, NULL);
        natsSubscription_SetPendingLimits(sub, -1, -1);
        natsConnection_Flush(sc);
        static char msg[65536];
        int64_t t0 = nats_Now(), end = t0 + (int64_t)(atof(argv[3]) * 1000);
        while (nats_Now() < end)
            for (int i = 0; i < 64; i++)
                natsConnection_Publish(pc, "bench.relay", msg, sizeof(msg));
        natsConnection_Flush(pc);
        natsConnection_Flush(sc);
        double secs = (nats_Now() - t0) / 1000.0;
        printf("%lld %.3f\n", (long long)atomic_load(&received), secs);
        natsSubscription_Destroy(sub);
        natsConnection_Destroy(pc);
        natsConnection_Destroy(sc);
    } else if (!strcmp(argv[1], "echo") && argc >= 5) {
        natsConnection *ec = connect(argv[2], 1), *rc = connect(argv[2], 1);
        natsSubscription *sub;
        natsConnection_Subscribe(&sub, ec, "bench.echo", echo, NULL);
        natsConnection_Flush(ec);
        int n = atoi(argv[3]), ms = atoi(argv[4]);
        double sum = 0, low = 1e9;
        char payload[84] = {0};
        for (int i = 0; i < n + 5; i++) {
            natsMsg *reply = NULL;
            int64_t t0 = nats_NowInNanoSeconds();
            if (natsConnection_Request(&reply, rc, "bench.echo", payload, sizeof(payload),
                                       5000) != NATS_OK)
                return 1;
            double rtt = (nats_NowInNanoSeconds() - t0) / 1e6;
            natsMsg_Destroy(reply);
            if (i >= 5) {  /* warm-up excluded */
                sum += rtt;
                low = rtt < low ? rtt : low;
            }
            nats_Sleep(ms);
        }
        printf("%.4f %.4f\n", sum / n, low);
        natsSubscription_Destroy(sub);
        natsConnection_Destroy(rc);
        natsConnection_Destroy(ec);
    } else {
        return 2;
    }
    nats_Close();
    return 0;
}
