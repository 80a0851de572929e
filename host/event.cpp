#include "event.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

namespace fraiseql_observer::host {

using ojson = nlohmann::ordered_json;

bool valid_subject_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        if (c <= 0x20 || c == 0x7f || c == '.' || c == '*' || c == '>') return false;
    }
    return true;
}

// The namespace of fraiseql-observer's name-based event ids (a fixed random UUID).
static const unsigned char k_namespace[16] = {0x6f, 0x1c, 0x3a, 0x52, 0x8e, 0x0b, 0x4d, 0x7e,
                                              0x9a, 0x27, 0x41, 0xc5, 0x13, 0xb8, 0x62, 0xf0};

std::string uuid_v5(std::string_view name) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
    EVP_DigestUpdate(ctx, k_namespace, sizeof k_namespace);
    EVP_DigestUpdate(ctx, name.data(), name.size());
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
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

std::string iso8601_utc(uint64_t ns) {
    std::time_t secs = static_cast<std::time_t>(ns / 1000000000ull);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%06uZ", buf,
                  static_cast<unsigned>((ns % 1000000000ull) / 1000));
    return out;
}

namespace {

// A string field, or an integer rendered as text (ids are often numeric).
bool text_of(const ojson &v, std::string &out) {
    if (v.is_string()) {
        out = v.get<std::string>();
        return true;
    }
    if (v.is_number_integer() || v.is_number_unsigned()) {
        out = v.dump();
        return true;
    }
    return false;
}

std::string excerpt(std::string_view s) {
    std::string e(s.substr(0, 60));
    for (char &c : e)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return s.size() > 60 ? e + "…" : e;
}

} // namespace

std::variant<EventData, Rejection> normalize_event(std::string_view payload,
                                                   std::string_view source_name, int64_t txid,
                                                   uint64_t now_ns) {
    ojson in = ojson::parse(payload.begin(), payload.end(), nullptr, false);
    if (in.is_discarded())
        return Rejection{"payload is not valid JSON: \"" + excerpt(payload) + "\""};
    if (!in.is_object()) return Rejection{"payload is not a JSON object"};

    EventData ev;
    auto field = [&](const char *name, const char *alias) -> const ojson * {
        auto it = in.find(name);
        if (it != in.end() && !it->is_null()) return &*it;
        if (alias) {
            it = in.find(alias);
            if (it != in.end() && !it->is_null()) return &*it;
        }
        return nullptr;
    };

    const ojson *et = field("entity_type", nullptr);
    if (!et) return Rejection{"missing entity_type"};
    if (!et->is_string()) return Rejection{"entity_type is not a string"};
    ev.entity_type = et->get<std::string>();
    if (!valid_subject_token(ev.entity_type))
        return Rejection{"entity_type \"" + excerpt(ev.entity_type) +
                         "\" is not a valid NATS subject token (no '.', '*', '>', whitespace)"};

    const ojson *op = field("operation", "event_type");
    if (!op) return Rejection{"missing operation (or event_type)"};
    if (!op->is_string()) return Rejection{"operation is not a string"};
    ev.operation = op->get<std::string>();
    for (char &c : ev.operation) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!valid_subject_token(ev.operation))
        return Rejection{"operation \"" + excerpt(ev.operation) +
                         "\" is not a valid NATS subject token (no '.', '*', '>', whitespace)"};

    const ojson *eid = field("entity_id", nullptr);
    if (!eid) return Rejection{"missing entity_id"};
    if (!text_of(*eid, ev.entity_id) || ev.entity_id.empty())
        return Rejection{"entity_id is not a non-empty string or integer"};

    const ojson *tx = field("txid", nullptr);
    ojson txid_json = nullptr;
    if (tx && (tx->is_number_integer() || tx->is_number_unsigned())) txid_json = *tx;
    else if (txid >= 0) txid_json = txid;

    const ojson *id = field("id", nullptr);
    if (id && text_of(*id, ev.id) && !ev.id.empty()) {
        // the source's own id is stable by construction
    } else {
        std::string name;
        name.reserve(source_name.size() + payload.size() + 24);
        name.append(source_name);
        name += '\n';
        name += txid_json.is_null() ? std::string("-") : txid_json.dump();
        name += '\n';
        name.append(payload);
        ev.id = uuid_v5(name);
    }

    // The body is written directly (no second JSON tree: the entity is not copied), in the
    // canonical field order.
    auto dump = [](const ojson &v) { return v.dump(-1, ' ', false, ojson::error_handler_t::replace); };
    std::string &b = ev.body;
    b.reserve(payload.size() + 256);
    auto put = [&](std::string_view key, const std::string &json_value) {
        b += b.empty() ? '{' : ',';
        b += '"';
        b += key;
        b += "\":";
        b += json_value;
    };
    put("id", dump(ev.id));
    put("entity_type", dump(ev.entity_type));
    put("operation", dump(ev.operation));
    put("entity_id", dump(ev.entity_id));
    const ojson *ts = field("timestamp", nullptr);
    put("timestamp", dump((ts && ts->is_string()) ? ts->get<std::string>() : iso8601_utc(now_ns)));
    put("txid", dump(txid_json));
    const ojson *entity = field("entity", "data");
    put("entity", entity ? dump(*entity) : "null");
    const ojson *changes = field("changes", nullptr);
    put("changes", changes ? dump(*changes) : "null");
    put("source", dump(std::string(source_name)));
    // Anything else the producer put in the payload is kept, after the standard fields.
    static const std::string_view standard[] = {"id", "entity_type", "operation", "entity_id",
                                                "timestamp", "txid", "entity", "changes",
                                                "source", "event_type", "data"};
    for (auto it = in.begin(); it != in.end(); ++it) {
        const std::string &k = it.key();
        if (std::find(std::begin(standard), std::end(standard), k) != std::end(standard)) continue;
        b += ',';
        b += dump(k); // the key, quoted and escaped
        b += ':';
        b += dump(it.value());
    }
    b += '}';
    ev.source = std::string(source_name);
    return ev;
}

} // namespace fraiseql_observer::host
