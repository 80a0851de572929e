// `jsonl_file`: appends each event as one JSON line to a file, rotating it by size.
//
//   [actions.archive]
//   plugin    = "jsonl_file"
//   path      = "/var/lib/fraiseql/events.jsonl"
//   max_bytes = 10485760    # rotate before the file would grow past this (0 = never)
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
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace sdk = fraiseql_observer::sdk;

namespace {

class JsonlFileAction final : public sdk::Action {
  public:
    // The keys this action accepts (ABI 1.1). The host checks every config against the table
    // before create — unknown keys, types, ranges, required keys, each error at its
    // file:line:col — and `fraiseql-observer plugins --describe jsonl_file` prints it.
    static constexpr fobs_config_key config_keys[] = {
        sdk::Key("path", FOBS_KEY_STRING, "The file events are appended to (created when missing).")
            .required()
            .not_empty(),
        sdk::Key(
            "max_bytes", FOBS_KEY_INTEGER,
            "Rotate before the file would grow past this many bytes (at most 1 TiB); `0` = never.")
            .def("10485760")
            .range(0, 1099511627776.0),
        sdk::Key("keep", FOBS_KEY_INTEGER,
                 "Rotated files kept: `<path>.1` (the newest) … `<path>.<keep>`.")
            .def("5")
            .range(1, 100),
        sdk::Key("fsync", FOBS_KEY_BOOLEAN,
                 "fsync after every event: a line survives a power loss, at the cost of one disk "
                 "flush per event.")
            .def("false"),
    };

    // No I/O here: `fraiseql-observer validate` is create + destroy.
    explicit JsonlFileAction(sdk::Host host) : Action(host) {
        // Runs the table's checks again (the same code as the host) and fills in the defaults;
        // a problem throws sdk::ConfigError naming the key.
        const sdk::ConfigReader config(host.config_json(), config_keys);
        path_ = config.string("path");
        max_bytes_ = static_cast<uint64_t>(config.integer("max_bytes"));
        keep_ = static_cast<int>(config.integer("keep"));
        fsync_ = config.boolean("fsync");
        // What a table cannot say is checked by hand, reported against its key the same way.
        if (path_.back() == '/')
            throw sdk::ConfigError("path", "names a directory; give a file name");
    }

    ~JsonlFileAction() override { close_file(); }

    // Not being able to open the file is not fatal: the action starts, reports not-ready, and
    // every execute() tries again (each event is retried meanwhile, so none is lost).
    void start() override {
        std::lock_guard lock(mu_);
        if (!open_file()) host().error("cannot open " + path_ + ": " + error_);
    }

    void stop() noexcept override {
        std::lock_guard lock(mu_);
        close_file();
    }

    bool ready(std::string &why) override {
        std::lock_guard lock(mu_);
        if (file_) return true;
        why = "cannot open " + path_ + ": " + error_;
        return false;
    }

    // May be called from several threads at once; the lock keeps lines whole. The completion
    // is settled after the lock is released.
    void execute(const sdk::Event &event, sdk::Completion done) override {
        const std::string error = append(event.body);
        if (error.empty())
            done.ok();
        else
            done.retry(error); // redelivered after the transport's backoff
    }

    // No fobs.limits/1 (max_attempt_ms): a write has no time bound of its own (a stalled disk
    // blocks it), so there is no longest attempt to state. An action with its own timeout
    // overrides `uint64_t max_attempt_ms() const` and returns it.

  private:
    // Appends one line; "" on success, else why not.
    std::string append(std::string_view body) {
        std::lock_guard lock(mu_);
        const uint64_t line = body.size() + 1;
        if (file_ && max_bytes_ > 0 && size_ > 0 && size_ + line > max_bytes_) rotate();
        if (!file_ && !open_file()) return "cannot open " + path_ + ": " + error_;
        if (std::fwrite(body.data(), 1, body.size(), file_) != body.size() ||
            std::fputc('\n', file_) == EOF || std::fflush(file_) != 0 ||
            (fsync_ && ::fsync(fileno(file_)) != 0)) {
            const std::string why = "cannot write " + path_ + ": " + std::strerror(errno);
            close_file(); // reopened by the next attempt; the line is written again then
            return why;
        }
        size_ += line;
        return {};
    }

    bool open_file() {
        file_ = std::fopen(path_.c_str(), "ab");
        if (!file_) {
            error_ = std::strerror(errno);
            return false;
        }
        struct stat st {};
        size_ = ::fstat(fileno(file_), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
        error_.clear();
        return true;
    }

    void close_file() {
        if (file_) std::fclose(file_);
        file_ = nullptr;
    }

    // events.jsonl -> events.jsonl.1 -> … -> events.jsonl.<keep> (the oldest is dropped). The
    // caller reopens the file.
    void rotate() {
        close_file();
        std::remove((path_ + "." + std::to_string(keep_)).c_str());
        for (int i = keep_ - 1; i >= 1; --i)
            std::rename((path_ + "." + std::to_string(i)).c_str(),
                        (path_ + "." + std::to_string(i + 1)).c_str());
        if (std::rename(path_.c_str(), (path_ + ".1").c_str()) != 0)
            host().warn("cannot rotate " + path_ + ": " + std::strerror(errno));
        else
            host().info("rotated " + path_);
    }

    std::string path_;
    uint64_t max_bytes_ = 0;
    int keep_ = 0;
    bool fsync_ = false;
    std::mutex mu_;
    std::FILE *file_ = nullptr;
    uint64_t size_ = 0;
    std::string error_; // why the last open failed
};

} // namespace

FOBS_PLUGIN("jsonl_file", "1.1.0", "Appends each event as a JSON line to a file, with rotation",
            JsonlFileAction)
