// bench/cluster.sh --quick (issue 15's benchmarks, smoke size): a private redis-server and
// parleyd --workers 4 --redis against one parleyd without Redis, cross-node fan-out closed and
// open loop, then the many-small-rooms steps. Checks the script ran end to end and its tables
// hold what the lead's full-size run will be read for: every row present, no delivery lost,
// every worker holding clients (a cross-node run), a verdict against the targets. About 30 s.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace {

// The cells of the markdown table row starting with `prefix` (trimmed; empty if there is none).
std::vector<std::string> row_cells(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::vector<std::string> cells;
    size_t at = 1;
    while (at < line.size()) {
      size_t bar = line.find('|', at);
      if (bar == std::string::npos) break;
      std::string cell = line.substr(at, bar - at);
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
      at = bar + 1;
    }
    return cells;
  }
  return {};
}

// "12/30/7/1" -> true when it has `count` numbers, each at least 1.
bool every_worker_held_clients(const std::string& spread, size_t count) {
  std::istringstream parts(spread);
  std::string part;
  size_t seen = 0;
  while (std::getline(parts, part, '/')) {
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || std::stoul(part) < 1) return false;
    ++seen;
  }
  return seen == count;
}

TEST(BenchClusterTest, QuickRunPrintsEveryRowWithoutLosses) {
  std::filesystem::path root = parley_test::find_repo_root("bench/cluster.sh");
  ASSERT_FALSE(root.empty()) << "bench/cluster.sh not found from the working directory";
  char pattern[] = "/tmp/parley-bench-cluster-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::filesystem::path out = pattern;
  std::string output;
  int status = parley_test::run_shell("cd '" + root.string() + "' && PARLEY_BUILD_DIR='" +
                                          std::filesystem::absolute(parley_test::build_dir()).string() +
                                          "' timeout 300 bash bench/cluster.sh --quick --out '" + out.string() +
                                          "' 2>&1",
                                      output);
  std::ifstream file(out / "results.md");
  std::stringstream results;
  results << file.rdbuf();
  const std::string md = results.str();
  std::filesystem::remove_all(out);
  ASSERT_EQ(status, 0) << parley_test::output_tail(output, 4000);

  // a. Four rows: closed and open loop, one process and the cluster.
  for (const char* load : {"closed", "open"}) {
    std::vector<std::string> single = row_cells(md, std::string("| ") + load + " | single |");
    ASSERT_EQ(single.size(), 11u) << load << "\n" << md;
    EXPECT_EQ(single[9], "0") << "errors, " << load << " single";
    std::vector<std::string> cluster = row_cells(md, std::string("| ") + load + " | cluster (");
    ASSERT_EQ(cluster.size(), 11u) << load << "\n" << md;
    EXPECT_EQ(cluster[9], "0") << "errors, " << load << " cluster";
    // "cluster (a/b/c/d)": the subscribers sat on all 4 workers.
    const std::string& server = cluster[1];
    ASSERT_GT(server.size(), 10u);
    EXPECT_TRUE(every_worker_held_clients(server.substr(9, server.size() - 10), 4)) << server;
    // Received of expected: equal (parley-load counts published x joined exactly).
    const std::string& deliveries = cluster[2];
    size_t open = deliveries.find('('), of = deliveries.find(" of "), close = deliveries.find(')');
    ASSERT_TRUE(open != std::string::npos && of != std::string::npos && close != std::string::npos) << deliveries;
    EXPECT_EQ(deliveries.substr(open + 1, of - open - 1), deliveries.substr(of + 4, close - of - 4)) << deliveries;
    EXPECT_TRUE(cluster[10].find("CPU PASS") != std::string::npos || cluster[10].find("CPU FAIL") != std::string::npos)
        << cluster[10];
    EXPECT_NE(cluster[6], "-") << "Redis CPU per delivery";
  }
  EXPECT_NE(row_cells(md, "| open | cluster (")[10].find("p99 "), std::string::npos);

  // b. The room steps (100, 200, 400 msg/s) up to the knee, and the sustained rate.
  std::vector<std::string> first = row_cells(md, "| 100 |");
  ASSERT_EQ(first.size(), 9u) << md;
  EXPECT_EQ(first[5], "0") << "errors at 100 msg/s";
  EXPECT_NE(first[6], "-") << "Redis CPU per message";
  EXPECT_NE(md.find("Sustained: "), std::string::npos) << md;
}

}  // namespace
