/* Reading a component's config in plain C, driven by its key table (config_reader.h). */
#include "config_reader.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void report_error(fobs_error *err, int32_t retriable, const char *key_path, const char *format, ...) {
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    fobs_error_set(err, FOBS_ERR, retriable, key_path, text);
}

/* ---- a scanner for the JSON text the host writes ---------------------------------------- */

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        ++c->p;
}

/* Moves past the JSON string that starts at the cursor; 0 when there is none. */
static int skip_string(cursor *c) {
    if (c->p >= c->end || *c->p != '"') return 0;
    ++c->p;
    while (c->p < c->end) {
        const char ch = *c->p++;
        if (ch == '"') return 1;
        if ((unsigned char)ch < 0x20) return 0;
        if (ch == '\\') {
            if (c->p >= c->end) return 0;
            ++c->p; /* the escaped character; decode_string checks the escape itself */
        }
    }
    return 0;
}

/* Moves past one JSON value of any kind (nested objects and lists as a whole). */
static int skip_value(cursor *c) {
    const char *start;
    skip_space(c);
    if (c->p >= c->end) return 0;
    if (*c->p == '"') return skip_string(c);
    if (*c->p == '{' || *c->p == '[') {
        int depth = 0;
        while (c->p < c->end) {
            const char ch = *c->p;
            if (ch == '"') {
                if (!skip_string(c)) return 0;
                continue;
            }
            ++c->p;
            if (ch == '{' || ch == '[') ++depth;
            else if ((ch == '}' || ch == ']') && --depth == 0) return 1;
        }
        return 0;
    }
    start = c->p; /* a number, true, false or null */
    while (c->p < c->end && strchr(",}] \t\r\n", *c->p) == NULL) ++c->p;
    return c->p > start;
}

static long hex4(const char *p, const char *end) {
    long v = 0;
    int i;
    if (end - p < 4) return -1;
    for (i = 0; i < 4; ++i) {
        const char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f') v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') v |= ch - 'A' + 10;
        else return -1;
    }
    return v;
}

static size_t put_utf8(char *o, long cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the JSON string [begin, end) (quotes included, already passed by skip_string) into
 * `out`, which has room for end - begin bytes: no escape decodes to more bytes than it is
 * written with. Returns the decoded length, or -1 for an invalid escape. */
static long decode_string(const char *begin, const char *end, char *out) {
    const char *p = begin + 1;
    const char *stop = end - 1;
    char *o = out;
    while (p < stop) {
        char ch = *p++;
        long cp;
        if (ch != '\\') {
            *o++ = ch;
            continue;
        }
        ch = *p++;
        switch (ch) {
        case '"': case '\\': case '/': *o++ = ch; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            cp = hex4(p, stop);
            if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return -1;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair: "\uD83D\uDE00" */
                long low;
                if (stop - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
                low = hex4(p + 2, stop);
                if (low < 0xDC00 || low > 0xDFFF) return -1;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            o += put_utf8(o, cp);
            break;
        default: return -1;
        }
    }
    return (long)(o - out);
}

/* 1 when the JSON string [begin, end) decodes to `name`. */
static int string_equals(const char *begin, const char *end, const char *name) {
    char *decoded = malloc((size_t)(end - begin));
    long n;
    int equal;
    if (decoded == NULL) return 0;
    n = decode_string(begin, end, decoded);
    equal = n >= 0 && (size_t)n == strlen(name) && memcmp(decoded, name, (size_t)n) == 0;
    free(decoded);
    return equal;
}

/* 1 with the member's JSON text in `*value` when the object `json` has a top-level member
 * `name`, 0 when it has none, -1 when `json` is not a JSON object. */
static int find_member(fobs_str json, const char *name, fobs_str *value) {
    cursor c;
    c.p = json.data;
    c.end = json.data + json.size;
    skip_space(&c);
    if (c.p >= c.end || *c.p != '{') return -1;
    ++c.p;
    skip_space(&c);
    if (c.p < c.end && *c.p == '}') return 0;
    for (;;) {
        const char *key = c.p;
        const char *text;
        int match;
        if (!skip_string(&c)) return -1;
        match = string_equals(key, c.p, name);
        skip_space(&c);
        if (c.p >= c.end || *c.p != ':') return -1;
        ++c.p;
        skip_space(&c);
        text = c.p;
        if (!skip_value(&c)) return -1;
        if (match) {
            value->data = text;
            value->size = (size_t)(c.p - text);
            return 1;
        }
        skip_space(&c);
        if (c.p < c.end && *c.p == ',') {
            ++c.p;
            skip_space(&c);
            continue;
        }
        return c.p < c.end && *c.p == '}' ? 0 : -1;
    }
}

/* The key's written value, else its default; 0 with `*text` empty when it has neither. */
static fobs_status member_or_default(fobs_str json, const fobs_config_key *key, fobs_str *text,
                                     fobs_error *err) {
    const int found = find_member(json, key->name, text);
    if (found < 0) {
        report_error(err, 0, "", "the configuration is not a JSON object");
        return FOBS_ERR_CONFIG;
    }
    if (found > 0) return FOBS_OK;
    if ((key->flags & FOBS_KEY_REQUIRED) != 0) {
        report_error(err, 0, key->name, "missing required key `%s`", key->name);
        return FOBS_ERR_CONFIG;
    }
    text->data = key->default_json;
    text->size = key->default_json != NULL ? strlen(key->default_json) : 0;
    return FOBS_OK;
}

fobs_status config_string(fobs_str json, const fobs_config_key *key, char **out, fobs_error *err) {
    fobs_str text;
    cursor c;
    long n;
    fobs_status s = member_or_default(json, key, &text, err);
    *out = NULL;
    if (s != FOBS_OK) return s;
    if (text.size == 0) { /* neither written nor defaulted: "" */
        text.data = "\"\"";
        text.size = 2;
    }
    c.p = text.data;
    c.end = text.data + text.size;
    if (!skip_string(&c) || c.p != c.end) {
        report_error(err, 0, key->name, "must be a string");
        return FOBS_ERR_CONFIG;
    }
    *out = malloc(text.size);
    if (*out == NULL) {
        report_error(err, 0, key->name, "out of memory");
        return FOBS_ERR_CONFIG;
    }
    n = decode_string(text.data, text.data + text.size, *out);
    if (n < 0 || memchr(*out, '\0', (size_t)n) != NULL) {
        report_error(err, 0, key->name, n < 0 ? "invalid string escape" : "must not contain NUL");
        free(*out);
        *out = NULL;
        return FOBS_ERR_CONFIG;
    }
    (*out)[n] = '\0';
    if (n == 0 && (key->flags & FOBS_KEY_NOT_EMPTY) != 0) {
        report_error(err, 0, key->name, "must not be empty");
        free(*out);
        *out = NULL;
        return FOBS_ERR_CONFIG;
    }
    return FOBS_OK;
}

/* A JSON integer: -?(0|[1-9][0-9]*), without fraction or exponent, within int64_t. */
static int parse_integer(fobs_str text, int64_t *out) {
    const char *p = text.data;
    const char *end = text.data + text.size;
    const int negative = p < end && *p == '-';
    const uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    if (negative) ++p;
    if (p >= end || (*p == '0' && end - p > 1)) return 0;
    for (; p < end; ++p) {
        const unsigned digit = (unsigned)(*p - '0');
        if (digit > 9 || v > (limit - digit) / 10) return 0;
        v = v * 10 + digit;
    }
    *out = negative ? (v == limit ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 1;
}

fobs_status config_integer(fobs_str json, const fobs_config_key *key, int64_t *out, fobs_error *err) {
    fobs_str text;
    fobs_status s = member_or_default(json, key, &text, err);
    *out = 0;
    if (s != FOBS_OK || text.size == 0) return s;
    if (!parse_integer(text, out)) {
        report_error(err, 0, key->name, "must be an integer, got %.*s", (int)text.size, text.data);
        return FOBS_ERR_CONFIG;
    }
    if (key->has_range && ((double)*out < key->min || (double)*out > key->max)) {
        report_error(err, 0, key->name, "must be between %.0f and %.0f, got %" PRId64, key->min,
                     key->max, *out);
        return FOBS_ERR_CONFIG;
    }
    return FOBS_OK;
}
