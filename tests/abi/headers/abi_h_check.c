/* Header matrix: abi.h (and error.h) must compile cleanly as C99, C11 and C17 with -Wall -Wextra -pedantic
 * -Werror. Uses every type and macro so that a broken declaration cannot hide. */
#include <fraiseql_observer/abi.h>
#include <fraiseql_observer/error.h>

static void check_complete(const fobs_completion *self, const fobs_outcome *outcome) {
    (void)self;
    (void)outcome;
}

int fobs_abi_h_check(const fobs_plugin_entry *entry);
int fobs_abi_h_check(const fobs_plugin_entry *entry) {
    fobs_completion done = {sizeof(fobs_completion), NULL, check_complete};
    fobs_error err = {sizeof(fobs_error), NULL, 0, NULL, 0, 0};
    fobs_event ev = {sizeof(fobs_event), {NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0},
                     {NULL, 0}, {NULL, 0}, 0, 0};
    fobs_label label = {{"a", 1}, {"b", 1}};
    fobs_consumer_options opts = {sizeof(fobs_consumer_options), {NULL, 0}, {NULL, 0}, NULL, 0,
                                  NULL, 0, 1, 0, NULL};
    fobs_source_record rec = {sizeof(fobs_source_record), {NULL, 0}, -1, {NULL, 0}};
    fobs_plugin_get_entry_fn fn = NULL;
    fobs_status st = FOBS_OK + FOBS_ERR + FOBS_ERR_CONFIG + FOBS_ERR_UNSUPPORTED;
    fobs_log_level lv = FOBS_LOG_TRACE + FOBS_LOG_DEBUG + FOBS_LOG_INFO + FOBS_LOG_WARN +
                        FOBS_LOG_ERROR;
    fobs_metric_type mt = FOBS_METRIC_COUNTER + FOBS_METRIC_GAUGE + FOBS_METRIC_HISTOGRAM;
    fobs_outcome_kind ok = FOBS_OUTCOME_OK + FOBS_OUTCOME_RETRY + FOBS_OUTCOME_FAILED;
    fobs_write_fn write = NULL;
    (void)done;
    (void)ev;
    (void)label;
    (void)opts;
    (void)rec;
    (void)fn;
    (void)write;
    if (!FOBS_HAS_FIELD(&err, fobs_error, retriable)) return -1;
    if (fobs_error_set(&err, FOBS_ERR_CONFIG, 0, "key", "message") != FOBS_ERR_CONFIG) return -1;
    if (entry == NULL || entry->abi_major != FOBS_ABI_MAJOR || entry->abi_minor > FOBS_ABI_MINOR)
        return -1;
    if (entry->action != NULL && entry->action->execute == NULL) return -1;
    if (entry->transport != NULL && entry->transport->consumer_close == NULL) return -1;
    if (entry->source != NULL && entry->source->start == NULL) return -1;
    return (int)(st + lv + mt + ok) + (int)sizeof(fobs_host) +
           (int)sizeof(fobs_source_sink) + (int)sizeof(fobs_consumer_sink) +
           (int)sizeof(FOBS_ENTRY_SYMBOL);
}
