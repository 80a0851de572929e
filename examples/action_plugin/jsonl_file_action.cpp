// `jsonl_file`: appends each event as one JSON line to a file, rotating it by size.
//
//   [actions.archive]
//   plugin    = "jsonl_file"
//   path      = "/var/lib/fraiseql/events.jsonl"
//   max_bytes = 10485760    # rotate when the file would grow past this (0 = never)
//   keep      = 5           # rotated files kept: events.jsonl.1 … events.jsonl.5
//   fsync     = false       # fsync after every event (durable, slower)
//
// An event is acknowledged (OK) only after its line was written (and fsynced when asked), so a
// crash can duplicate a line but never lose one. Write errors are transient (RETRY).
#include <fraiseql_observer/plugin.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace sdk = fraiseql_observer::sdk;

namespace {

// The SDK depends on nothing but the standard library, and so does this example: a tiny
// reader for the flat JSON object the host hands over ({"key": "string" | number | bool}).
struct FlatJson {
    std::string_view text;

    // Returns the raw token after "key": (string without quotes), or nullopt-like empty + found.
    bool find(const std::string &key, std::string &out, bool &is_string) const {
        std::string needle = "\"" + key + "\"";
        size_t k = text.find(needle);
        if (k == std::string_view::npos) return false;
        size_t p = text.find(':', k + needle.size());
        if (p == std::string_view::npos) return false;
        ++p;
        while (p < text.size() && (text[p] == ' ' || text[p] == '\t' || text[p] == '\n')) ++p;
        if (p < text.size() && text[p] == '"') {
            is_string = true;
            out.clear();
            for (++p; p < text.size() && text[p] != '"'; ++p) {
                if (text[p] == '\\' && p + 1 < text.size()) ++p;
                out += text[p];
            }
            return true;
        }
        is_string = false;
        size_t e = text.find_first_of(",}", p);
        out = std::string(text.substr(p, e - p));
        while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
        return true;
    }
};

class JsonlFileAction final : public sdk::Action {
  public:
    explicit JsonlFileAction(sdk::Host host) : Action(host) {
        FlatJson cfg{host.config_json()};
        std::string v;
        bool is_string = false;
        if (!cfg.find("path", path_, is_string) || !is_string || path_.empty())
            throw sdk::ConfigError("path", "is required (the file to append events to)");
        if (cfg.find("max_bytes", v, is_string)) max_bytes_ = to_number(v, is_string, "max_bytes");
        if (cfg.find("keep", v, is_string)) {
            keep_ = static_cast<int>(to_number(v, is_string, "keep"));
            if (keep_ < 1 || keep_ > 100) throw sdk::ConfigError("keep", "must be 1..100");
        }
        if (cfg.find("fsync", v, is_string)) {
            if (is_string || (v != "true" && v != "false"))
                throw sdk::ConfigError("fsync", "must be true or false");
            fsync_ = v == "true";
        }
    }

    ~JsonlFileAction() override { close_file(); }

    void start() override {
        std::lock_guard lock(mu_);
        open_file();
    }

    void stop() noexcept override {
        std::lock_guard lock(mu_);
        close_file();
    }

    void execute(const sdk::Event &event, sdk::Completion done) override {
        std::lock_guard lock(mu_);
        if (!file_ && !open_file()) {
            done.retry("cannot open " + path_ + ": " + std::strerror(errno));
            return;
        }
        if (max_bytes_ > 0 && size_ > 0 && size_ + event.body.size() + 1 > max_bytes_) rotate();
        if (std::fwrite(event.body.data(), 1, event.body.size(), file_) != event.body.size() ||
            std::fputc('\n', file_) == EOF || std::fflush(file_) != 0 ||
            (fsync_ && ::fsync(fileno(file_)) != 0)) {
            done.retry("cannot write " + path_ + ": " + std::strerror(errno));
            close_file();
            return;
        }
        size_ += event.body.size() + 1;
        done.ok();
    }

    bool ready(std::string &why) override {
        std::lock_guard lock(mu_);
        if (file_) return true;
        why = "cannot open " + path_;
        return false;
    }

  private:
    static uint64_t to_number(const std::string &v, bool is_string, const char *key) {
        if (is_string || v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
            throw sdk::ConfigError(key, "must be a non-negative integer");
        return std::stoull(v);
    }

    bool open_file() {
        file_ = std::fopen(path_.c_str(), "ab");
        if (!file_) {
            host().error("cannot open " + path_ + ": " + std::strerror(errno));
            return false;
        }
        struct stat st {};
        size_ = ::fstat(fileno(file_), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
        return true;
    }

    void close_file() {
        if (file_) std::fclose(file_);
        file_ = nullptr;
    }

    // events.jsonl -> events.jsonl.1 -> … -> events.jsonl.<keep> (the oldest is dropped).
    void rotate() {
        close_file();
        std::remove((path_ + "." + std::to_string(keep_)).c_str());
        for (int i = keep_ - 1; i >= 1; --i)
            std::rename((path_ + "." + std::to_string(i)).c_str(),
                        (path_ + "." + std::to_string(i + 1)).c_str());
        std::rename(path_.c_str(), (path_ + ".1").c_str());
        host().info("rotated " + path_);
        open_file();
    }

    std::string path_;
    uint64_t max_bytes_ = 10 * 1024 * 1024;
    int keep_ = 5;
    bool fsync_ = false;
    std::mutex mu_;
    std::FILE *file_ = nullptr;
    uint64_t size_ = 0;
};

} // namespace

FOBS_PLUGIN("jsonl_file", "1.0.0", "Appends each event as a JSON line to a file, with rotation",
            JsonlFileAction)
