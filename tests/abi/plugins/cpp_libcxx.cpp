// An action built with clang++ and libc++ (see tests/abi/CMakeLists.txt) and loaded into the
// g++/libstdc++ host: only C types cross the boundary, so the two C++ runtimes never meet.
// It uses the runtime inside the plugin on purpose -- strings, containers, a thread that
// completes the token, an exception caught internally and one that escapes execute (which the
// wrapper must turn into a RETRY).
#include <fraiseql_observer/plugin.hpp>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sdk = fraiseql_observer::sdk;

namespace {

class LibcxxAction final : public sdk::Action {
  public:
    explicit LibcxxAction(sdk::Host host) : Action(host) {
#if defined(_LIBCPP_VERSION)
        host.info("abi_libcxx uses libc++ " + std::to_string(_LIBCPP_VERSION));
#else
        host.info("abi_libcxx was not built with libc++");
#endif
    }
    ~LibcxxAction() override {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto &t : threads_) t.join();
    }

    void execute(const sdk::Event &event, sdk::Completion done) override {
        std::string type(event.entity_type);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            ++seen_[type];
        }
        try {
            throw std::logic_error("caught inside the plugin");
        } catch (const std::exception &) {
        }
        if (type == "throw") throw std::runtime_error("libc++ exception from execute");
        if (type == "async") {
            // Complete from a libc++ std::thread: tokens may be completed from any thread.
            std::lock_guard<std::mutex> lock(mutex_);
            threads_.emplace_back([d = std::move(done)]() mutable { d.ok(); });
            return;
        }
        done.ok();
    }

    bool ready(std::string &) override { return true; }

  private:
    std::mutex mutex_;
    std::map<std::string, int> seen_;
    std::vector<std::thread> threads_;
};

} // namespace

FOBS_PLUGIN("abi_libcxx", "1.0.0", "ABI test: an action built with clang++ and libc++",
            LibcxxAction)
