#include "config_interpolate.hpp"

namespace fraiseql_observer::host {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

} // namespace

Interpolated interpolate_env(std::string_view text, const EnvLookup &env) {
    Interpolated out;
    out.value.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c != '$' || i + 1 >= text.size()) {
            out.value.push_back(c);
            ++i;
            continue;
        }
        const char next = text[i + 1];
        if (next == '$') {
            out.value.push_back('$');
            i += 2;
            continue;
        }
        if (next != '{') {
            // A bare `$` that starts neither `$$` nor `${` is literal text on purpose: passwords
            // and patterns often contain `$`, and only `${` is reserved.
            out.value.push_back('$');
            ++i;
            continue;
        }
        const size_t close = text.find('}', i + 2);
        if (close == std::string_view::npos)
            throw InterpolationError("unterminated `${` (write `$$` for a literal `$`)");
        const std::string_view body = text.substr(i + 2, close - (i + 2));
        size_t name_end = 0;
        while (name_end < body.size() && is_name_char(body[name_end]))
            ++name_end;
        const std::string name(body.substr(0, name_end));
        if (name.empty() || !is_name_start(name[0]))
            throw InterpolationError(
                "invalid variable reference: expected ${NAME} or ${NAME:-default} with NAME made of "
                "letters, digits and `_` (write `$$` for a literal `$`)");
        const std::string_view rest = body.substr(name_end);
        const bool has_default = rest.substr(0, 2) == ":-";
        if (!rest.empty() && !has_default)
            throw InterpolationError("invalid reference to variable `" + name +
                                     "`: expected ${" + name + "} or ${" + name + ":-default}");
        out.used_env = true;
        const std::optional<std::string> value = env(name);
        if (has_default) {
            if (value && !value->empty())
                out.value += *value;
            else
                out.value += rest.substr(2);
        } else {
            if (!value)
                throw InterpolationError("environment variable `" + name +
                                         "` is not set (set it, or write ${" + name +
                                         ":-default} to give a fallback)");
            out.value += *value;
        }
        i = close + 1;
    }
    return out;
}

} // namespace fraiseql_observer::host
