#include "cli.hpp"

int main(int argc, char **argv) { return fraiseql_observer::host::cli_main(argc, argv); }
