/*
 * Reading a component's config in plain C, driven by its key table.
 *
 * The host hands a component its TOML table as JSON text (`fobs_host.config_json`): a flat
 * object here, already checked against the key table by a 1.1 host (unknown keys, types,
 * ranges, required keys), with defaults NOT filled in. These functions find one top-level
 * member, fall back to the key's `default_json`, and check type, range and REQUIRED once more
 * -- cheap, and it keeps the plugin safe with a config that did not come through a host (a
 * unit test). Nested tables and lists are skipped over but not read: this plugin has none.
 */
#ifndef UDP_DATAGRAM_CONFIG_READER_H
#define UDP_DATAGRAM_CONFIG_READER_H

#include <fraiseql_observer/abi.h>
#include <fraiseql_observer/error.h>

/* Formats the message (printf-style, up to 512 bytes) and hands it to the SDK's
 * fobs_error_set with the key it is about ("" for none) and whether trying again later could
 * help. */
void report_error(fobs_error *err, int32_t retriable, const char *key_path, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The string value of `key` as a NUL-terminated copy the caller frees. FOBS_OK, or
 * FOBS_ERR_CONFIG with `err` filled (also when out of memory). */
fobs_status config_string(fobs_str json, const fobs_config_key *key, char **out, fobs_error *err);

/* The integer value of `key` (a JSON integer: `5.0` is not one), within the key's range when
 * it has one. FOBS_OK, or FOBS_ERR_CONFIG with `err` filled. */
fobs_status config_integer(fobs_str json, const fobs_config_key *key, int64_t *out, fobs_error *err);

#endif /* UDP_DATAGRAM_CONFIG_READER_H */
