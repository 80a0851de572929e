// e2e_bench: the pieces of the end-to-end benchmark that bench/run.sh strings together.
// Every measuring sub-command prints one tab-separated result line (and appends it to
// --results FILE); `table` turns those lines into the final table.
#include "subcommands.hpp"

#include <cstring>
#include <exception>
#include <iostream>

namespace {

const char *k_usage = R"(usage: e2e_bench <command> [--key value ...]
  receive      --port P                                  webhook receiver (GET /stats, POST /reset)
  drive        --label L --kind K --conninfo C --table T --events N [--connections 4]
               [--rows-per-tx 100] [--rate EV_PER_S] --receiver-port P [--pids 1,2]
               [--timeout-secs 120] [--stall-secs 10] [--results FILE] [--note TEXT]
               [--note-file F]              appends F's first line (waits up to 10 s for it)
               [--stages-file F]            the per-stage breakdown (F from stage-tap), extra rows
               [--backlog [--start-us T]]   no load: the rows are already there; the rate counts
                                            from T (wall-clock µs, when the contender started);
                                            the receiver is not reset, no latency is reported
  raw-listen   --conninfo C --table T --channel CH --events N [--connections 4] [--rows-per-tx 100]
  raw-insert   --conninfo C --table T --events N [--connections 4] [--rows-per-tx 100]
  raw-cdc      --conninfo C --table T --events N [--connections 4] [--rows-per-tx 100] [--rate EV_PER_S]
               [--publication bench_raw_cdc] [--slot bench_raw_cdc] [--latency-column created_at]
                                            a temporary pgoutput slot read by a bare libpq client
  raw-publish  --nats-url U --stream S --subject-prefix P --events N [--window 1000]
  raw-fetch    --nats-url U --stream S --subject-prefix P --events N [--batch 500]
  raw-post     --receiver-port P --events N [--concurrency 32]
  tap          --nats-url U --subject S --out F [--events N] [--ready-file F] [--idle-secs 5]
                                            latency at NATS (plain subscriber); one line to F
  stage-tap    --nats-url U --stream S --out F [--events N] [--ready-file F] [--idle-secs 5]
                                            copies of the stream's deliveries ("_INBOX.>"): per event
                                            id its timestamp, stored time and delivery time, to F
  table        --results FILE [--strict]
  free-port                                              prints a free 127.0.0.1 TCP port
Every measuring command also takes --label, --kind, --results.
)";

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        std::cout << k_usage;
        return argc < 2 ? 2 : 0;
    }
    std::string cmd = argv[1];
    try {
        fobs_bench::Args args(argc, argv, 2);
        if (cmd == "receive") return fobs_bench::run_receiver(args);
        if (cmd == "drive") return fobs_bench::run_drive(args);
        if (cmd == "raw-listen") return fobs_bench::run_raw_listen(args);
        if (cmd == "raw-insert") return fobs_bench::run_raw_insert(args);
        if (cmd == "raw-cdc") return fobs_bench::run_raw_cdc(args);
        if (cmd == "raw-publish") return fobs_bench::run_raw_publish(args);
        if (cmd == "raw-fetch") return fobs_bench::run_raw_fetch(args);
        if (cmd == "raw-post") return fobs_bench::run_raw_post(args);
        if (cmd == "tap") return fobs_bench::run_tap(args);
        if (cmd == "stage-tap") return fobs_bench::run_stage_tap(args);
        if (cmd == "table") return fobs_bench::run_table(args);
        if (cmd == "free-port") return fobs_bench::run_free_port(args);
    } catch (const std::exception &e) {
        std::cerr << "e2e_bench " << cmd << ": " << e.what() << "\n";
        return 1;
    }
    std::cerr << k_usage;
    return 2;
}
