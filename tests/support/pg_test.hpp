// A gtest fixture base for suites that run against one real PostgreSQL cluster: the cluster
// starts once per suite (SetUpTestSuite) and each test works in a database of its own.
//
//   class PgNotify : public fobs_test::PgDatabaseTest {
//       void SetUp() override { use_new_database("notify"); }   // db_ = "notify_<n>"
//   };
#pragma once

#include "pg_cluster.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fobs_test {

class PgDatabaseTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { pg_ = new PgCluster(); }
    static void TearDownTestSuite() {
        delete pg_;
        pg_ = nullptr;
    }
    /// Creates the database "<prefix>_<n>" (n counts up per binary) and makes it db_.
    void use_new_database(const std::string &prefix) {
        static int n = 0;
        db_ = prefix + "_" + std::to_string(++n);
        pg_->exec("CREATE DATABASE " + db_);
    }

    inline static PgCluster *pg_ = nullptr;
    std::string db_;
};

} // namespace fobs_test
