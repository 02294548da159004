// README.md's "parleyd options" block against `parleyd --help` (chat::parleyd_usage()): every
// option --help lists is documented in README, and README documents no option parleyd lacks.
#include <gtest/gtest.h>

#include <fstream>
#include <cctype>
#include <set>
#include <sstream>
#include <string>

#include "chat/parleyd_options.h"
#include "tests/support/shell_command.h"

namespace {

// The options named at the start of an option line ("  --name ...", "  -x, --name ..."). No
// std::regex: GCC 12 warns inside <regex> under ASan at -O1, and -Werror makes that an error.
std::set<std::string> option_names(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l.size() < 5 || l.compare(0, 2, "  ") != 0 || l[2] != '-') continue;
    size_t at = 2;
    if (l[3] != '-' && l.compare(4, 2, ", ") == 0) at = 6;  // "-x, --name"
    if (l.compare(at, 2, "--") != 0 || at + 2 >= l.size() || l[at + 2] < 'a' || l[at + 2] > 'z') continue;
    size_t end = at + 2;
    while (end < l.size() && (std::islower(static_cast<unsigned char>(l[end])) ||
                              std::isdigit(static_cast<unsigned char>(l[end])) || l[end] == '-')) {
      ++end;
    }
    names.insert(l.substr(at, end - at));
  }
  return names;
}

// The fenced block that follows the "## parleyd options" heading.
std::string readme_options_block() {
  std::filesystem::path root = parley_test::find_repo_root("README.md");
  std::ifstream file(root / "README.md");
  std::stringstream all;
  all << file.rdbuf();
  const std::string text = all.str();
  size_t heading = text.find("## parleyd options");
  if (heading == std::string::npos) return {};
  size_t open = text.find("```text\n", heading);
  size_t close = open == std::string::npos ? open : text.find("\n```", open + 8);
  if (close == std::string::npos) return {};
  return text.substr(open + 8, close - open - 8);
}

TEST(ReadmeOptions, ReadmeListsExactlyTheOptionsOfHelp) {
  const std::string block = readme_options_block();
  ASSERT_FALSE(block.empty()) << "README.md has no fenced block under '## parleyd options'";
  const std::set<std::string> help = option_names(chat::parleyd_usage());
  const std::set<std::string> readme = option_names(block);
  ASSERT_GT(help.size(), 20u) << "the --help parser found too few options: the format changed?";
  for (const std::string& name : help) EXPECT_TRUE(readme.count(name)) << name << " is in --help but not in README.md";
  for (const std::string& name : readme) EXPECT_TRUE(help.count(name)) << name << " is in README.md but not in --help";
}

}  // namespace
