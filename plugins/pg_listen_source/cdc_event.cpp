#include "cdc_event.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <locale.h>

namespace fraiseql_observer::pg_listen {
namespace {

using pgoutput::Relation;
using pgoutput::Tuple;
using pgoutput::Value;
using pgoutput::ValueKind;

// The host's event-id namespace (host/event.cpp), so every id the project derives lives in one
// namespace; the "pg-cdc" / "pg-cdc-snapshot" name prefixes keep CDC names apart from others.
const unsigned char k_namespace[16] = {0x6f, 0x1c, 0x3a, 0x52, 0x8e, 0x0b, 0x4d, 0x7e,
                                       0x9a, 0x27, 0x41, 0xc5, 0x13, 0xb8, 0x62, 0xf0};

constexpr uint32_t oid_bool = 16, oid_int8 = 20, oid_int2 = 21, oid_int4 = 23, oid_oid = 26,
                   oid_json = 114, oid_float4 = 700, oid_float8 = 701, oid_numeric = 1700,
                   oid_jsonb = 3802;

// A JSON number (RFC 8259 grammar) that a double holds: what the host's validator and
// nlohmann accept. PostgreSQL's NaN/Infinity, and numeric values beyond 1.8e308, are not.
bool json_number(std::string_view s) {
    size_t i = 0, n = s.size();
    if (i < n && s[i] == '-') ++i;
    if (i == n) return false;
    size_t int_start = i;
    if (s[i] == '0') ++i;
    else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    else return false;
    long magnitude = static_cast<long>(i - int_start);
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == d) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        bool negative = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
        size_t d = i;
        long exponent = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (exponent < 100000) exponent = exponent * 10 + (s[i] - '0');
            ++i;
        }
        if (i == d) return false;
        magnitude += negative ? -exponent : exponent;
    }
    if (i != n) return false;
    if (magnitude < 300) return true; // far from DBL_MAX; underflow to zero is fine
    static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
    std::string text(s);
    return std::isfinite(strtod_l(text.c_str(), nullptr, c_locale));
}

void append_hex_escape(std::string &out, unsigned char c) {
    static const char *hex = "0123456789abcdef";
    out += "\\u00";
    out += hex[c >> 4];
    out += hex[c & 0x0f];
}

// Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_length(std::string_view s, size_t i) {
    auto at = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
    auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return at(k) >= lo && at(k) <= hi; };
    unsigned c = at(0);
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

// "2026-11-27T04:23:51.123456Z" from µs since 2000-01-01 UTC.
void append_timestamp(std::string &out, int64_t pg_us) {
    // Seconds and µs apart first, so no commit time (even a corrupt one) overflows.
    int64_t secs = pg_us / 1000000, micros = pg_us % 1000000;
    if (micros < 0) micros += 1000000, secs -= 1;
    std::time_t t = static_cast<std::time_t>(secs + pgoutput::pg_epoch_unix_seconds);
    std::tm tm{};
    if (!gmtime_r(&t, &tm)) tm = std::tm{}, tm.tm_mday = 1, tm.tm_year = -1900; // year 0: out of range
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) { // outside RFC 3339; only a corrupt commit time gets here
        char buf[64];
        std::snprintf(buf, sizeof buf, "\"%d-%02d-%02dT%02d:%02d:%02d.%06dZ\"", year, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(micros));
        out += buf;
        return;
    }
    char buf[29] = "\"0000-00-00T00:00:00.000000Z";
    auto put = [&buf](int at, int width, long v) {
        for (int k = at + width - 1; k >= at; --k, v /= 10) buf[k] = static_cast<char>('0' + v % 10);
    };
    put(1, 4, year);
    put(6, 2, tm.tm_mon + 1);
    put(9, 2, tm.tm_mday);
    put(12, 2, tm.tm_hour);
    put(15, 2, tm.tm_min);
    put(18, 2, tm.tm_sec);
    put(21, 6, static_cast<long>(micros));
    out.append(buf, 28);
    out += '"';
}

void append_key(std::string &out, std::string_view key) {
    out += out.back() == '{' ? "\"" : ",\"";
    out += key; // the payload's own member names: plain ASCII
    out += "\":";
}

void append_uuid(std::string &out, std::string_view name) {
    out += '"';
    out += uuid_v5(name);
    out += '"';
}

// The members every change event starts with.
void append_head(std::string &out, std::string_view id_name, std::string_view entity_type, std::string_view op,
                 std::string_view entity_id) {
    out = "{";
    append_key(out, "id");
    append_uuid(out, id_name);
    append_key(out, "entity_type");
    append_json_string(out, entity_type);
    append_key(out, "operation");
    append_json_string(out, op);
    append_key(out, "entity_id");
    append_json_string(out, entity_id);
}

void append_tx(std::string &out, const TxContext &tx) {
    append_key(out, "timestamp");
    append_timestamp(out, tx.commit_time_us);
    append_key(out, "txid");
    out += std::to_string(tx.xid);
    append_key(out, "lsn");
    out += '"';
    out += pgoutput::lsn_text(tx.commit_lsn);
    out += '"';
}

std::string change_id_name(const TxContext &tx, uint32_t index) {
    std::string name = "pg-cdc\n";
    name += tx.system_id;
    name += '\n';
    name += pgoutput::lsn_text(tx.commit_lsn);
    name += '\n';
    name += std::to_string(index);
    return name;
}

void append_value(std::string &out, uint32_t type_oid, const Value &v) {
    if (v.kind == ValueKind::text) append_json_value(out, type_oid, v.text);
    else out += "null";
}

} // namespace

std::string uuid_v5(std::string_view name) {
    // EVP_sha1() makes OpenSSL 3 look the algorithm up (under a lock) at every init: fetch it
    // once, and keep one context per thread.
    static EVP_MD *const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    struct Ctx {
        EVP_MD_CTX *p = EVP_MD_CTX_new();
        ~Ctx() { EVP_MD_CTX_free(p); }
    };
    thread_local Ctx ctx;
    unsigned char digest[EVP_MAX_MD_SIZE] = {};
    unsigned int len = 0;
    EVP_DigestInit_ex(ctx.p, sha1 ? sha1 : EVP_sha1(), nullptr);
    EVP_DigestUpdate(ctx.p, k_namespace, sizeof k_namespace);
    EVP_DigestUpdate(ctx.p, name.data(), name.size());
    EVP_DigestFinal_ex(ctx.p, digest, &len);
    digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);
    digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);
    static const char *hex = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0x0f];
    }
    return out;
}

void append_json_string(std::string &out, std::string_view s) {
    out += '"';
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        // The common case, a run of printable ASCII, is copied in one go.
        size_t run = i;
        while (run < s.size() && static_cast<unsigned char>(s[run]) >= 0x20 && static_cast<unsigned char>(s[run]) < 0x80 &&
               s[run] != '"' && s[run] != '\\')
            ++run;
        if (run > i) {
            out.append(s.data() + i, run - i);
            i = run;
            continue;
        }
        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += static_cast<char>(c);
            } else if (c < 0x20) {
                append_hex_escape(out, c);
            } else {
                out += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        size_t n = utf8_length(s, i);
        if (n == 0) { // not UTF-8 (a non-UTF8 server encoding, or corrupt bytes): U+FFFD
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    out += '"';
}

void append_json_value(std::string &out, uint32_t type_oid, std::string_view text) {
    switch (type_oid) {
    case oid_bool:
        if (text == "t") return void(out += "true");
        if (text == "f") return void(out += "false");
        break;
    case oid_int2:
    case oid_int4:
    case oid_int8:
    case oid_oid:
    case oid_numeric:
    case oid_float4:
    case oid_float8:
        // As PostgreSQL printed them (numeric keeps every digit); NaN, ±Infinity and anything
        // a JSON reader could not hold stay strings.
        if (json_number(text)) return void(out.append(text));
        break;
    case oid_json:
    case oid_jsonb:
        // Embedded as written when it is JSON the host accepts (nlohmann and the host's checker
        // agree, except the host refuses anything after a NUL byte). PostgreSQL's json type
        // accepts numbers beyond a double (1e400): those values go out as their text. nlohmann
        // also skips a leading UTF-8 byte order mark, which is not JSON inside a document.
        if (text.find('\0') == std::string_view::npos && text.substr(0, 3) != "\xEF\xBB\xBF" &&
            nlohmann::json::accept(text))
            return void(out.append(text));
        break;
    default: break;
    }
    append_json_string(out, text);
}

std::string entity_name(const Relation &rel, const std::map<std::string, std::string> &overrides) {
    if (auto it = overrides.find(rel.schema + "." + rel.name); it != overrides.end()) return it->second;
    if (rel.schema == "public" || rel.schema.empty())
        if (auto it = overrides.find(rel.name); it != overrides.end()) return it->second;
    std::string_view base = rel.name;
    if (base.substr(0, 3) == "tb_") base.remove_prefix(3);
    // '_' and anything a NATS subject token may not hold ('.', '*', '>', whitespace, C0/C1
    // control characters) separate words, and bytes that are not UTF-8 are dropped, so the name
    // is always a valid subject token of at most 63 bytes (PostgreSQL's identifier limit).
    std::string out;
    bool word_start = true;
    for (size_t i = 0; i < base.size();) {
        unsigned char c = static_cast<unsigned char>(base[i]);
        if (c >= 0x80) {
            size_t n = utf8_length(base, i);
            bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(base[i + 1]) <= 0x9F;
            if (n == 0 || c1) {
                word_start = true;
                i += n == 0 ? 1 : n;
                continue;
            }
            out.append(base.substr(i, n));
            word_start = false;
            i += n;
            continue;
        }
        ++i;
        if (c == '_' || c == '.' || c == '*' || c == '>' || c <= 0x20 || c == 0x7f) {
            word_start = true;
            continue;
        }
        out += word_start && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : static_cast<char>(c);
        word_start = false;
    }
    return out.empty() ? std::string("Table") + std::to_string(rel.oid) : out;
}

bool change_payload(const Relation &rel, const pgoutput::Decoded &change, const TxContext &tx, uint32_t index,
                    std::string_view entity_type, std::string &out, std::string &error) {
    const char *op = nullptr;
    const Tuple *row = nullptr; // the image the event's entity shows
    const Tuple *old_tuple = nullptr;
    char old_kind = 0;
    uint32_t relation = 0;
    if (auto *ins = std::get_if<pgoutput::Insert>(&change)) {
        op = "INSERT", row = &ins->new_tuple, relation = ins->relation;
    } else if (auto *upd = std::get_if<pgoutput::Update>(&change)) {
        op = "UPDATE", row = &upd->new_tuple, relation = upd->relation;
        if (upd->old_kind != 0) old_tuple = &upd->old_tuple, old_kind = upd->old_kind;
    } else if (auto *del = std::get_if<pgoutput::Delete>(&change)) {
        op = "DELETE", row = &del->old_tuple, relation = del->relation, old_kind = del->old_kind;
    } else {
        return error = "not an INSERT, UPDATE or DELETE", false;
    }
    if (relation != rel.oid) return error = "change of relation " + std::to_string(relation) + " given relation " +
                                            std::to_string(rel.oid) + " (" + rel.schema + "." + rel.name + ")",
                                 false;
    const size_t ncols = rel.columns.size();
    if (row->size() != ncols || (old_tuple && old_tuple->size() != ncols))
        return error = "tuple has " + std::to_string(row->size()) + " columns, relation " + rel.schema + "." +
                       rel.name + " has " + std::to_string(ncols),
               false;
    const bool is_delete = op[0] == 'D';

    // The value shown for column i, or nullptr when it is not known (not sent: a non-key
    // column of a 'K' tuple, or unchanged TOAST with no old image to take it from).
    auto shown = [&](size_t i) -> const Value * {
        const Value &v = (*row)[i];
        if (is_delete && old_kind == 'K' && !rel.columns[i].key) return nullptr;
        if (v.kind != ValueKind::unchanged) return &v;
        // Unchanged TOAST: the value is the same as before, so the old image's value (sent
        // under REPLICA IDENTITY FULL, or for a key column in a 'K' tuple) is the new value.
        if (old_tuple && (*old_tuple)[i].kind == ValueKind::text) return &(*old_tuple)[i];
        return nullptr;
    };

    std::string entity_id;
    std::vector<size_t> keys = pgoutput::key_columns(rel);
    if (keys.empty()) return error = "table " + rel.schema + "." + rel.name + " has no primary key or replica identity key", false;
    for (size_t j = 0; j < keys.size(); ++j) {
        const Value *v = shown(keys[j]);
        if (!v || v->kind != ValueKind::text)
            return error = "key column " + rel.columns[keys[j]].name + " of " + rel.schema + "." + rel.name +
                           " has no value" +
                           (rel.replica_identity == 'f' && !rel.primary_key_known
                                ? " (REPLICA IDENTITY FULL and no primary key known: every column is a key)"
                                : ""),
                   false;
        if (j) entity_id += ':';
        entity_id.append(v->text);
    }
    if (entity_id.empty()) return error = "empty key value in " + rel.schema + "." + rel.name, false;

    append_head(out, change_id_name(tx, index), entity_type, op, entity_id);
    append_tx(out, tx);
    append_key(out, "entity");
    out += '{';
    std::vector<size_t> unchanged;
    bool first = true;
    for (size_t i = 0; i < ncols; ++i) {
        const Value *v = shown(i);
        if (!v) {
            if ((*row)[i].kind == ValueKind::unchanged) unchanged.push_back(i);
            continue;
        }
        if (!first) out += ',';
        first = false;
        append_json_string(out, rel.columns[i].name);
        out += ':';
        append_value(out, rel.columns[i].type_oid, *v);
    }
    out += '}';

    append_key(out, "changes");
    if (op[0] == 'U' && old_kind == 'O') {
        out += '{';
        first = true;
        for (size_t i = 0; i < ncols; ++i) {
            const Value &o = (*old_tuple)[i], &n = (*row)[i];
            // Either side unchanged TOAST: the value did not change (or the old one is unknown).
            if (o.kind == ValueKind::unchanged || n.kind == ValueKind::unchanged) continue;
            if (o.kind == n.kind && o.text == n.text) continue;
            if (!first) out += ',';
            first = false;
            append_json_string(out, rel.columns[i].name);
            out += ":{\"old\":";
            append_value(out, rel.columns[i].type_oid, o);
            out += ",\"new\":";
            append_value(out, rel.columns[i].type_oid, n);
            out += '}';
        }
        out += '}';
    } else {
        out += "null";
    }
    if (!unchanged.empty()) {
        append_key(out, "unchanged");
        out += '[';
        for (size_t i = 0; i < unchanged.size(); ++i) {
            if (i) out += ',';
            append_json_string(out, rel.columns[unchanged[i]].name);
        }
        out += ']';
    }
    out += '}';
    return true;
}

void truncate_payload(const Relation &rel, const TxContext &tx, uint32_t index, std::string_view entity_type,
                      std::string &out) {
    (void)rel; // the entity type already names the table; kept for symmetry with change_payload
    append_head(out, change_id_name(tx, index), entity_type, "TRUNCATE", "*");
    append_tx(out, tx);
    append_key(out, "entity");
    out += "null";
    append_key(out, "changes");
    out += "null";
    out += '}';
}

bool snapshot_payload(std::string_view schema, std::string_view table, const std::vector<SnapshotColumn> &row,
                      std::string_view system_id, uint64_t consistent_lsn, std::string_view entity_type,
                      std::string &out, std::string &error) {
    std::string entity_id;
    bool any_key = false;
    for (const auto &c : row) {
        if (!c.key) continue;
        if (!c.text) return error = "key column " + std::string(c.name) + " of " + std::string(schema) + "." +
                                    std::string(table) + " is NULL",
                     false;
        if (any_key) entity_id += ':';
        entity_id.append(c.text, c.len);
        any_key = true;
    }
    if (!any_key) return error = "table " + std::string(schema) + "." + std::string(table) + " has no key column", false;
    if (entity_id.empty()) return error = "empty key value in " + std::string(schema) + "." + std::string(table), false;
    std::string lsn = pgoutput::lsn_text(consistent_lsn);
    std::string name = "pg-cdc-snapshot\n";
    name += system_id;
    name += '\n';
    name += lsn;
    name += '\n';
    name += schema;
    name += '.';
    name += table;
    name += '\n';
    name += entity_id;
    append_head(out, name, entity_type, "READ", entity_id);
    append_key(out, "lsn");
    out += '"';
    out += lsn;
    out += '"';
    append_key(out, "entity");
    out += '{';
    for (size_t i = 0; i < row.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, row[i].name);
        out += ':';
        if (row[i].text) append_json_value(out, row[i].type_oid, std::string_view(row[i].text, row[i].len));
        else out += "null";
    }
    out += '}';
    append_key(out, "changes");
    out += "null";
    out += '}';
    return true;
}

} // namespace fraiseql_observer::pg_listen
