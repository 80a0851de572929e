#include "pgoutput.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

namespace fraiseql_observer::pg_listen::pgoutput {
namespace {

// A bounds-checked big-endian reader over one message. Every read fails (and stays failed)
// rather than reading past the end, so decode() can check once per field group.
class Reader {
  public:
    explicit Reader(std::string_view s) : s_(s) {}

    bool ok() const { return ok_; }
    size_t left() const { return ok_ ? s_.size() - pos_ : 0; }
    bool at_end() const { return ok_ && pos_ == s_.size(); }

    template <typename T> T uint_be() {
        if (!need(sizeof(T))) return 0;
        T v = 0;
        for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v << 8 | static_cast<unsigned char>(s_[pos_ + i]));
        pos_ += sizeof(T);
        return v;
    }
    uint8_t u8() { return uint_be<uint8_t>(); }
    uint16_t u16() { return uint_be<uint16_t>(); }
    uint32_t u32() { return uint_be<uint32_t>(); }
    uint64_t u64() { return uint_be<uint64_t>(); }
    int32_t i32() { return static_cast<int32_t>(u32()); }
    int64_t i64() { return static_cast<int64_t>(u64()); }

    /// A NUL-terminated String field (the NUL is consumed, not returned).
    std::string_view cstring() {
        if (!ok_) return {};
        size_t nul = s_.find('\0', pos_);
        if (nul == std::string_view::npos) return fail(), std::string_view{};
        std::string_view v = s_.substr(pos_, nul - pos_);
        pos_ = nul + 1;
        return v;
    }
    std::string_view bytes(size_t n) {
        if (!need(n)) return {};
        std::string_view v = s_.substr(pos_, n);
        pos_ += n;
        return v;
    }

  private:
    bool need(size_t n) {
        if (ok_ && s_.size() - pos_ >= n) return true;
        fail();
        return false;
    }
    void fail() { ok_ = false; }

    std::string_view s_;
    size_t pos_ = 0;
    bool ok_ = true;
};

// TupleData: Int16 column count, then per column a kind byte and, for 't', Int32 length + bytes.
bool read_tuple(Reader &r, Tuple &t, std::string &error) {
    uint16_t n = r.u16();
    if (!r.ok()) return error = "truncated tuple header", false;
    // Every column takes at least one byte: a count the rest cannot hold is malformed, and
    // checking it first keeps a hostile count from allocating.
    if (n > r.left()) return error = "tuple column count overruns the message", false;
    t.clear();
    t.reserve(n);
    for (uint16_t i = 0; i < n; ++i) {
        uint8_t kind = r.u8();
        if (!r.ok()) return error = "truncated tuple", false;
        switch (kind) {
        case 'n': t.push_back({ValueKind::null, {}}); break;
        case 'u': t.push_back({ValueKind::unchanged, {}}); break;
        case 't': {
            uint32_t len = r.u32();
            std::string_view text = r.bytes(len);
            if (!r.ok()) return error = "tuple value overruns the message", false;
            t.push_back({ValueKind::text, text});
            break;
        }
        case 'b': return error = "binary tuple values are not supported (binary option off)", false;
        default: return error = "unknown tuple value kind", false;
        }
    }
    return true;
}

bool finish(Reader &r, std::string &error, const char *what) {
    if (!r.ok()) return error = std::string("truncated ") + what + " message", false;
    if (!r.at_end()) return error = std::string("trailing bytes after ") + what + " message", false;
    return true;
}

} // namespace

bool decode(std::string_view msg, Decoded &out, std::string &error) {
    if (msg.empty()) return error = "empty message", false;
    Reader r(msg.substr(1));
    switch (msg[0]) {
    case 'B': {
        Begin b;
        b.final_lsn = r.u64();
        b.commit_time_us = r.i64();
        b.xid = r.u32();
        if (!finish(r, error, "Begin")) return false;
        out = b;
        return true;
    }
    case 'C': {
        Commit c;
        c.flags = r.u8();
        c.commit_lsn = r.u64();
        c.end_lsn = r.u64();
        c.commit_time_us = r.i64();
        if (!finish(r, error, "Commit")) return false;
        out = c;
        return true;
    }
    case 'O': {
        Origin o;
        o.lsn = r.u64();
        o.name = r.cstring();
        if (!finish(r, error, "Origin")) return false;
        out = std::move(o);
        return true;
    }
    case 'R': {
        Relation rel;
        rel.oid = r.u32();
        rel.schema = r.cstring();
        rel.name = r.cstring();
        rel.replica_identity = static_cast<char>(r.u8());
        uint16_t n = r.u16();
        if (!r.ok()) return error = "truncated Relation message", false;
        // A column takes at least 10 bytes (flags, name's NUL, type OID, typmod).
        if (static_cast<size_t>(n) * 10 > r.left()) return error = "Relation column count overruns the message", false;
        rel.columns.reserve(n);
        for (uint16_t i = 0; i < n && r.ok(); ++i) {
            Column c;
            c.key = (r.u8() & 1) != 0;
            c.name = r.cstring();
            c.type_oid = r.u32();
            c.type_mod = r.i32();
            rel.columns.push_back(std::move(c));
        }
        if (!finish(r, error, "Relation")) return false;
        out = std::move(rel);
        return true;
    }
    case 'Y': {
        Type t;
        t.oid = r.u32();
        t.schema = r.cstring();
        t.name = r.cstring();
        if (!finish(r, error, "Type")) return false;
        out = std::move(t);
        return true;
    }
    case 'I': {
        Insert ins;
        ins.relation = r.u32();
        if (r.u8() != 'N' || !r.ok()) return error = r.ok() ? "Insert without a new tuple" : "truncated Insert message", false;
        if (!read_tuple(r, ins.new_tuple, error) || !finish(r, error, "Insert")) return false;
        out = std::move(ins);
        return true;
    }
    case 'U': {
        Update u;
        u.relation = r.u32();
        uint8_t tag = r.u8();
        if (!r.ok()) return error = "truncated Update message", false;
        if (tag == 'K' || tag == 'O') {
            u.old_kind = static_cast<char>(tag);
            if (!read_tuple(r, u.old_tuple, error)) return false;
            tag = r.u8();
            if (!r.ok()) return error = "truncated Update message", false;
        }
        if (tag != 'N') return error = "Update without a new tuple", false;
        if (!read_tuple(r, u.new_tuple, error) || !finish(r, error, "Update")) return false;
        out = std::move(u);
        return true;
    }
    case 'D': {
        Delete d;
        d.relation = r.u32();
        uint8_t tag = r.u8();
        if (!r.ok()) return error = "truncated Delete message", false;
        if (tag != 'K' && tag != 'O') return error = "Delete without an old tuple", false;
        d.old_kind = static_cast<char>(tag);
        if (!read_tuple(r, d.old_tuple, error) || !finish(r, error, "Delete")) return false;
        out = std::move(d);
        return true;
    }
    case 'T': {
        Truncate t;
        uint32_t n = r.u32();
        t.options = r.u8();
        if (!r.ok()) return error = "truncated Truncate message", false;
        if (static_cast<uint64_t>(n) * 4 != r.left()) return error = "Truncate relation count does not match the message", false;
        t.relations.reserve(n);
        for (uint32_t i = 0; i < n; ++i) t.relations.push_back(r.u32());
        if (!finish(r, error, "Truncate")) return false;
        out = std::move(t);
        return true;
    }
    case 'M': {
        Message m;
        m.transactional = (r.u8() & 1) != 0;
        m.lsn = r.u64();
        m.prefix = r.cstring();
        uint32_t len = r.u32();
        m.content = r.bytes(len);
        if (!finish(r, error, "Message")) return false;
        out = std::move(m);
        return true;
    }
    default: {
        char buf[48];
        unsigned char tag = static_cast<unsigned char>(msg[0]);
        if (tag >= 0x20 && tag < 0x7f) std::snprintf(buf, sizeof buf, "unknown message type '%c'", tag);
        else std::snprintf(buf, sizeof buf, "unknown message type 0x%02x", tag);
        error = buf;
        return false;
    }
    }
}

std::string lsn_text(uint64_t lsn) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xffffffffu));
    return buf;
}

bool parse_lsn(std::string_view text, uint64_t &lsn) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return false;
    auto half = [](std::string_view h, uint64_t &v) {
        if (h.empty() || h.size() > 8) return false;
        v = 0;
        for (char c : h) {
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else return false;
            v = v << 4 | static_cast<uint64_t>(d);
        }
        return true;
    };
    uint64_t hi, lo;
    if (!half(text.substr(0, slash), hi) || !half(text.substr(slash + 1), lo)) return false;
    lsn = hi << 32 | lo;
    return true;
}

uint32_t base_type_oid(const Type &t) {
    if (!t.schema.empty() && t.schema != "pg_catalog") return 0;
    static const std::pair<std::string_view, uint32_t> builtins[] = {
        {"bool", 16},   {"int8", 20},    {"int2", 21},    {"int4", 23},       {"oid", 26},
        {"json", 114},  {"float4", 700}, {"float8", 701}, {"numeric", 1700}, {"jsonb", 3802}};
    for (const auto &[name, oid] : builtins)
        if (t.name == name) return oid;
    return 0;
}

std::vector<size_t> key_columns(const Relation &rel) {
    std::vector<size_t> keys;
    bool use_primary = rel.primary_key_known && (rel.replica_identity == 'f' || rel.replica_identity == 'n');
    for (size_t i = 0; i < rel.columns.size(); ++i)
        if (use_primary ? rel.columns[i].primary_key : rel.columns[i].key) keys.push_back(i);
    return keys;
}

void RelationCache::put(Relation r) {
    uint32_t oid = r.oid;
    relations_.insert_or_assign(oid, std::move(r));
}

const Relation *RelationCache::find(uint32_t oid) const {
    auto it = relations_.find(oid);
    return it == relations_.end() ? nullptr : &it->second;
}

void RelationCache::clear() { relations_.clear(); }

size_t RelationCache::size() const { return relations_.size(); }

bool decode_copy_frame(std::string_view data, CopyFrame &out, std::string &error) {
    if (data.empty()) return error = "empty CopyData", false;
    Reader r(data.substr(1));
    switch (data[0]) {
    case 'w': {
        XLogData x;
        x.data_start = r.u64();
        x.wal_end = r.u64();
        x.send_time_us = r.i64();
        if (!r.ok()) return error = "truncated XLogData header", false;
        x.payload = r.bytes(r.left());
        out = x;
        return true;
    }
    case 'k': {
        Keepalive k;
        k.wal_end = r.u64();
        k.send_time_us = r.i64();
        k.reply_requested = r.u8() != 0;
        if (!finish(r, error, "keepalive")) return false;
        out = k;
        return true;
    }
    default: return error = "unknown CopyData frame (expected 'w' or 'k')", false;
    }
}

std::string standby_status(uint64_t write, uint64_t flush, uint64_t apply, int64_t now_us, bool reply) {
    std::string s;
    s.reserve(34);
    s += 'r';
    auto put64 = [&s](uint64_t v) {
        for (int shift = 56; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
    };
    put64(write);
    put64(flush);
    put64(apply);
    put64(static_cast<uint64_t>(now_us));
    s += static_cast<char>(reply ? 1 : 0);
    return s;
}

int64_t pg_now_us() {
    auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    return since_unix.count() - pg_epoch_unix_seconds * 1000000;
}

} // namespace fraiseql_observer::pg_listen::pgoutput
