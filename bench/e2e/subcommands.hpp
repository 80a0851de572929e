// The sub-commands of `e2e_bench` (one file each); each returns the process exit code.
#pragma once

#include "common.hpp"

namespace fobs_bench {

int run_receiver(const Args &args);    // receive: the webhook receiver (until SIGTERM)
int run_drive(const Args &args);       // drive: insert rows, wait for the receiver, one result
int run_raw_listen(const Args &args);  // raw-listen: trigger + pg_notify -> a bare LISTEN client
int run_raw_insert(const Args &args);  // raw-insert: INSERT rate alone (e.g. the outbox trigger)
int run_raw_cdc(const Args &args);     // raw-cdc: INSERT -> a bare libpq logical replication client
int run_raw_publish(const Args &args); // raw-publish: cnats js_PublishAsync with msg ids
int run_raw_fetch(const Args &args);   // raw-fetch: cnats Fetch(batch) + natsMsg_Ack
int run_raw_post(const Args &args);    // raw-post: curl multi POSTs to the receiver
int run_tap(const Args &args);         // tap: latency at NATS, a plain subscriber on the contender's subjects
int run_stage_tap(const Args &args);   // stage-tap: JetStream deliveries seen from outside, for the stage breakdown
int run_table(const Args &args);       // table: the final table and the goals of issue 8
int run_free_port(const Args &args);   // free-port: a free loopback port, for run.sh

} // namespace fobs_bench
