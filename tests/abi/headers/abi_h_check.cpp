// Header matrix: abi.h (and error.h) must compile cleanly as C++11, 14, 17 and 20 with -Wall -Wextra
// -pedantic -Werror, with C linkage, and the C check file's usage must be valid C++ too.
#include <fraiseql_observer/abi.h>
#include <fraiseql_observer/error.h>

#include <type_traits>

static_assert(std::is_standard_layout<fobs_plugin_entry>::value, "entry is a C struct");
static_assert(std::is_trivial<fobs_action_desc>::value, "descriptors are C structs");
static_assert(std::is_same<decltype(FOBS_OK), decltype(FOBS_ERR)>::value, "one enum");
static_assert(sizeof(fobs_status) == 4 && sizeof(fobs_outcome_kind) == 4, "fixed-width");

extern "C" FOBS_EXPORT const fobs_plugin_entry *fobs_abi_h_check_entry(void);
extern "C" FOBS_EXPORT const fobs_plugin_entry *fobs_abi_h_check_entry(void) {
    static const fobs_plugin_entry entry = {sizeof(fobs_plugin_entry), FOBS_ABI_MAJOR,
                                            FOBS_ABI_MINOR, "check", "1", nullptr, nullptr,
                                            nullptr, nullptr, FOBS_ABI_MINOR, nullptr,
                                            nullptr};
    return FOBS_HAS_FIELD(&entry, fobs_plugin_entry, deinit) ? &entry : nullptr;
}
