// fraiseql_observer/error.h: fobs_error_set fills a caller's fobs_error the way the host reads it
// (plain-C plugins use it; the C++ wrapper has its own path).
#include <fraiseql_observer/error.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>

TEST(SdkError, copies_both_texts_and_the_retriable_flag_and_returns_the_status) {
    char message[64], key_path[32];
    fobs_error err{sizeof(fobs_error), message, sizeof message, key_path, sizeof key_path, 0};
    EXPECT_EQ(fobs_error_set(&err, FOBS_ERR_CONFIG, 1, "jetstream.max_deliver", "must be > 0"),
              FOBS_ERR_CONFIG);
    EXPECT_STREQ(message, "must be > 0");
    EXPECT_STREQ(key_path, "jetstream.max_deliver");
    EXPECT_EQ(err.retriable, 1);
}

TEST(SdkError, truncates_to_the_callers_capacity_and_always_terminates) {
    char message[8], key_path[4];
    std::memset(message, 'x', sizeof message);
    std::memset(key_path, 'x', sizeof key_path);
    fobs_error err{sizeof(fobs_error), message, sizeof message, key_path, sizeof key_path, 0};
    fobs_error_set(&err, FOBS_ERR, 0, "abcdef", "a much longer message");
    EXPECT_EQ(std::string(message), "a much ");
    EXPECT_EQ(std::string(key_path), "abc");
    char one[1] = {'x'};
    fobs_error tiny{sizeof(fobs_error), one, 1, nullptr, 0, 0};
    fobs_error_set(&tiny, FOBS_ERR, 0, "k", "m");
    EXPECT_EQ(one[0], '\0');
}

TEST(SdkError, null_error_buffers_and_texts_are_safe) {
    EXPECT_EQ(fobs_error_set(nullptr, FOBS_ERR, 1, "k", "m"), FOBS_ERR);
    fobs_error none{sizeof(fobs_error), nullptr, 0, nullptr, 0, 0};
    EXPECT_EQ(fobs_error_set(&none, FOBS_ERR, 1, nullptr, nullptr), FOBS_ERR);
    EXPECT_EQ(none.retriable, 1);
    char message[16] = "old", key_path[16] = "old";
    fobs_error err{sizeof(fobs_error), message, sizeof message, key_path, sizeof key_path, 0};
    fobs_error_set(&err, FOBS_ERR, 0, nullptr, nullptr);
    EXPECT_STREQ(message, "");
    EXPECT_STREQ(key_path, "");
}

TEST(SdkError, a_shorter_struct_from_an_older_caller_is_not_written_past_its_end) {
    char message[16];
    fobs_error err{offsetof(fobs_error, key_path), message, sizeof message, nullptr, 0, 7};
    fobs_error_set(&err, FOBS_ERR, 1, "key", "text");
    EXPECT_STREQ(message, "text");
    EXPECT_EQ(err.retriable, 7) << "retriable lies past the caller's struct_size";
}
