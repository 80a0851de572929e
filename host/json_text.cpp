#include "json_text.hpp"

#include <clocale>
#include <cmath>
#include <cstdlib>
#include <locale.h>
#include <string>
#include <vector>

namespace fraiseql_observer::host {
namespace {

class Checker {
  public:
    explicit Checker(std::string_view s, std::vector<JsonMember> *members = nullptr)
        : p_(reinterpret_cast<const unsigned char *>(s.data())), e_(p_ + s.size()), members_(members) {}

    bool run() {
        if (e_ - p_ >= 3 && p_[0] == 0xEF && p_[1] == 0xBB && p_[2] == 0xBF) p_ += 3;
        enum class Next { value, key, after_value } next = Next::value;
        skip_ws();
        for (;;) {
            if (next == Next::key) {
                const unsigned char *key_begin = p_;
                if (p_ == e_ || *p_ != '"' || !string()) return false;
                if (members_ && stack_.size() == 1) {
                    key_begin_ = key_begin;
                    key_end_ = p_;
                }
                skip_ws();
                if (p_ == e_ || *p_ != ':') return false;
                ++p_;
                skip_ws();
                next = Next::value;
                continue;
            }
            if (next == Next::value) {
                if (p_ == e_) return false;
                if (members_ && in_top_object()) value_begin_ = p_;
                switch (*p_) {
                case '{':
                    ++p_;
                    skip_ws();
                    if (p_ != e_ && *p_ == '}') {
                        ++p_;
                        next = Next::after_value;
                    } else {
                        stack_.push_back('{');
                        next = Next::key;
                    }
                    continue;
                case '[':
                    ++p_;
                    skip_ws();
                    if (p_ != e_ && *p_ == ']') {
                        ++p_;
                        next = Next::after_value;
                    } else {
                        stack_.push_back('[');
                    }
                    continue;
                case '"':
                    if (!string()) return false;
                    break;
                case 't':
                    if (!literal("true")) return false;
                    break;
                case 'f':
                    if (!literal("false")) return false;
                    break;
                case 'n':
                    if (!literal("null")) return false;
                    break;
                default:
                    if (!number()) return false;
                }
                next = Next::after_value;
                continue;
            }
            // after a value (or after a container closed: the value that held it ended)
            if (members_ && in_top_object())
                members_->push_back({view(key_begin_, key_end_), view(value_begin_, p_)});
            skip_ws();
            if (stack_.empty()) return p_ == e_;
            if (p_ == e_) return false;
            if (*p_ == ',') {
                ++p_;
                skip_ws();
                next = stack_.back() == '{' ? Next::key : Next::value;
                continue;
            }
            if ((stack_.back() == '{' && *p_ == '}') || (stack_.back() == '[' && *p_ == ']')) {
                ++p_;
                stack_.pop_back();
                continue;
            }
            return false;
        }
    }

  private:
    bool in_top_object() const { return stack_.size() == 1 && stack_.back() == '{'; }
    static std::string_view view(const unsigned char *b, const unsigned char *e) {
        return {reinterpret_cast<const char *>(b), static_cast<size_t>(e - b)};
    }

    void skip_ws() {
        while (p_ != e_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }

    bool literal(const char *word) {
        for (; *word; ++word, ++p_)
            if (p_ == e_ || *p_ != static_cast<unsigned char>(*word)) return false;
        return true;
    }

    bool digits() { // one or more
        const unsigned char *start = p_;
        while (p_ != e_ && *p_ >= '0' && *p_ <= '9') ++p_;
        return p_ != start;
    }

    bool number() {
        const unsigned char *start = p_;
        if (*p_ == '-') ++p_;
        if (p_ == e_) return false;
        const unsigned char *int_start = p_;
        if (*p_ == '0') ++p_;
        else if (!digits()) return false;
        long magnitude = p_ - int_start; // decimal digits before the point: an upper bound of log10
        if (p_ != e_ && *p_ == '.') {
            ++p_;
            if (!digits()) return false;
        }
        if (p_ != e_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            bool negative = false;
            if (p_ != e_ && (*p_ == '+' || *p_ == '-')) negative = *p_++ == '-';
            const unsigned char *exp_start = p_;
            if (!digits()) return false;
            long exponent = 0;
            for (const unsigned char *d = exp_start; d != p_ && exponent < 100000; ++d) exponent = exponent * 10 + (*d - '0');
            magnitude += negative ? -exponent : exponent;
        }
        // Like nlohmann (and most JSON parsers), refuse a number a double cannot hold: only
        // worth checking near DBL_MAX (1.8e308); underflow to zero is fine.
        if (magnitude < 300) return true;
        std::string text(reinterpret_cast<const char *>(start), static_cast<size_t>(p_ - start));
        static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
        return std::isfinite(strtod_l(text.c_str(), nullptr, c_locale));
    }

    bool hex4(unsigned &cp) {
        if (e_ - p_ < 4) return false;
        cp = 0;
        for (int i = 0; i < 4; ++i, ++p_) {
            unsigned c = *p_, v;
            if (c >= '0' && c <= '9') v = c - '0';
            else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
            else return false;
            cp = cp << 4 | v;
        }
        return true;
    }

    bool continuation(unsigned char lo = 0x80, unsigned char hi = 0xBF) {
        if (p_ == e_ || *p_ < lo || *p_ > hi) return false;
        ++p_;
        return true;
    }

    bool string() { // at the opening quote
        for (++p_; p_ != e_;) {
            unsigned char c = *p_;
            if (c == '"') {
                ++p_;
                return true;
            }
            if (c == '\\') {
                ++p_;
                if (p_ == e_) return false;
                switch (*p_++) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                    break;
                case 'u': {
                    unsigned cp;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xDC00 && cp <= 0xDFFF) return false; // a low surrogate first
                    if (cp >= 0xD800 && cp <= 0xDBFF) {                // must pair with a low one
                        if (e_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
                        p_ += 2;
                        if (!hex4(cp) || cp < 0xDC00 || cp > 0xDFFF) return false;
                    }
                    break;
                }
                default:
                    return false;
                }
                continue;
            }
            if (c < 0x20) return false;
            ++p_;
            if (c < 0x80) continue;
            // UTF-8, RFC 3629 section 4.
            bool ok;
            if (c >= 0xC2 && c <= 0xDF) ok = continuation();
            else if (c == 0xE0) ok = continuation(0xA0) && continuation();
            else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) ok = continuation() && continuation();
            else if (c == 0xED) ok = continuation(0x80, 0x9F) && continuation();
            else if (c == 0xF0) ok = continuation(0x90) && continuation() && continuation();
            else if (c >= 0xF1 && c <= 0xF3) ok = continuation() && continuation() && continuation();
            else if (c == 0xF4) ok = continuation(0x80, 0x8F) && continuation() && continuation();
            else ok = false;
            if (!ok) return false;
        }
        return false; // unterminated
    }

    // The open containers, innermost last. Payloads rarely nest deeper than a few levels: the
    // first levels live in the object itself, so a check allocates nothing (it runs for every
    // event, twice); deeper nesting spills to the heap, so depth stays unbounded.
    class Stack {
      public:
        bool empty() const { return depth_ == 0; }
        size_t size() const { return depth_; }
        char back() const { return depth_ <= kInline ? inline_[depth_ - 1] : spill_.back(); }
        void push_back(char c) {
            if (depth_ < kInline) inline_[depth_] = c;
            else spill_.push_back(c);
            ++depth_;
        }
        void pop_back() {
            if (depth_ > kInline) spill_.pop_back();
            --depth_;
        }

      private:
        static constexpr size_t kInline = 64;
        char inline_[kInline];
        size_t depth_ = 0;
        std::vector<char> spill_;
    };

    const unsigned char *p_, *e_;
    Stack stack_;
    std::vector<JsonMember> *members_;
    const unsigned char *key_begin_ = nullptr, *key_end_ = nullptr, *value_begin_ = nullptr;
};

} // namespace

bool json_valid(std::string_view text) { return Checker(text).run(); }

bool json_valid(std::string_view text, std::vector<JsonMember> &members) {
    members.clear();
    return Checker(text, &members).run();
}

} // namespace fraiseql_observer::host
