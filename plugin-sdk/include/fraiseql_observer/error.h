/* fraiseql-observer plugin SDK: filling a caller's fobs_error from plain C.
 *
 * The C++ wrapper (plugin.hpp) fills fobs_error from exceptions; a C plugin writes the caller's
 * buffers itself. fobs_error_set does it the one right way: both texts truncated to the
 * caller's capacity and always NUL-terminated, NULL buffers (capacity 0) skipped, `retriable`
 * written only when the caller's struct has it. C99 and C++11 or later, header-only, no
 * dependency beyond abi.h.
 *
 *   char text[128];
 *   snprintf(text, sizeof text, "must be between 1 and 65535, got %lld", port);
 *   return fobs_error_set(err, FOBS_ERR_CONFIG, 0, "port", text);
 */
#ifndef FRAISEQL_OBSERVER_ERROR_H
#define FRAISEQL_OBSERVER_ERROR_H

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copies `text` (NULL reads as "") into dst[0..capacity), truncated and NUL-terminated. */
static inline void fobs_error_copy_text(char *dst, size_t capacity, const char *text) {
    size_t i = 0;
    if (dst == NULL || capacity == 0) return;
    if (text != NULL)
        for (; i + 1 < capacity && text[i] != '\0'; ++i) dst[i] = text[i];
    dst[i] = '\0';
}

/* Fills `err` (may be NULL: nothing is written) with `message` and `key_path` (relative to
 * the component's table, "" or NULL when the error is about no key) and `retriable` (1 when
 * trying again later could succeed: a start that failed on a server not yet up). Returns
 * `status`, so a function can `return fobs_error_set(err, FOBS_ERR_CONFIG, ...)`. */
static inline fobs_status fobs_error_set(fobs_error *err, fobs_status status, int32_t retriable,
                                         const char *key_path, const char *message) {
    if (err == NULL) return status;
    if (FOBS_HAS_FIELD(err, fobs_error, message_capacity))
        fobs_error_copy_text(err->message, err->message_capacity, message);
    if (FOBS_HAS_FIELD(err, fobs_error, key_path_capacity))
        fobs_error_copy_text(err->key_path, err->key_path_capacity, key_path);
    if (FOBS_HAS_FIELD(err, fobs_error, retriable)) err->retriable = retriable;
    return status;
}

#ifdef __cplusplus
}
#endif

#endif /* FRAISEQL_OBSERVER_ERROR_H */
