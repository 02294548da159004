#include "tools/token_tool.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <charconv>
#include <string_view>

#include "chat/auth_token.h"
#include "chat/chat_codec.h"

namespace tools {

namespace {

// Ten years: longer-lived bearer tokens are a liability, and it keeps exp far from overflow.
constexpr uint64_t kMaxTtlSeconds = 10ull * 366 * 24 * 3600;
constexpr std::string_view kTool = "parley-token";

struct TokenOptions {
  std::string secret_file;
  std::string sub;
  bool has_rooms = false;
  std::vector<std::string> rooms;
  uint64_t ttl_s = 3600;
  uint64_t nbf_delay_s = 0;
  bool verify = false;
  std::string token;  // --verify argument ("-" = stdin)
  bool has_now = false;
  uint64_t now_s = 0;
};

bool parse_u64(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Splits "a,b" into room names; "" gives an empty list (a token that allows no room).
bool split_rooms(std::string_view list, std::vector<std::string>& rooms, std::string& bad) {
  rooms.clear();
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view room = list.substr(0, comma);
    if (!chat::is_valid_room_name(room)) {
      bad.assign(room);
      return false;
    }
    rooms.emplace_back(room.front() == '#' ? room.substr(1) : room);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
    if (list.empty()) {  // a trailing comma
      bad.clear();
      return false;
    }
  }
  return true;
}

// Returns -1 to go on, otherwise the exit code.
int parse(const std::vector<std::string>& args, TokenOptions& o, std::FILE* out, std::FILE* err) {
  auto usage_error = [&](const std::string& message) {
    std::fprintf(err, "%s: %s (see --help)\n", kTool.data(), message.c_str());
    return kTokenExitUsage;
  };
  bool has_ttl = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      print_token_usage(out);
      return kTokenExitOk;
    }
    if (i + 1 >= args.size()) return usage_error("unknown or incomplete option '" + a + "'");
    const std::string& v = args[++i];
    if (a == "--secret-file") {
      o.secret_file = v;
    } else if (a == "--sub") {
      if (!chat::is_valid_user_name(v)) {
        return usage_error("--sub '" + v + "' is not a user name (1-32 of A-Z a-z 0-9 _ . -)");
      }
      o.sub = v;
    } else if (a == "--rooms") {
      std::string bad;
      if (!split_rooms(v, o.rooms, bad)) {
        return usage_error(bad.empty() ? "--rooms has an empty entry"
                                       : "--rooms: '" + bad + "' is not a room name");
      }
      o.has_rooms = true;
    } else if (a == "--ttl") {
      if (!parse_u64(v, o.ttl_s) || o.ttl_s == 0 || o.ttl_s > kMaxTtlSeconds) {
        return usage_error("--ttl must be 1 to " + std::to_string(kMaxTtlSeconds) + " seconds");
      }
      has_ttl = true;
    } else if (a == "--not-before") {
      if (!parse_u64(v, o.nbf_delay_s) || o.nbf_delay_s > kMaxTtlSeconds) {
        return usage_error("--not-before must be 0 to " + std::to_string(kMaxTtlSeconds) +
                           " seconds");
      }
    } else if (a == "--verify") {
      o.verify = true;
      o.token = v;
    } else if (a == "--now") {
      if (!parse_u64(v, o.now_s) || o.now_s > UINT64_MAX / 2) {
        return usage_error("--now must be seconds since the epoch");
      }
      o.has_now = true;
    } else {
      return usage_error("unknown option '" + a + "'");
    }
  }
  if (o.secret_file.empty()) return usage_error("--secret-file FILE is required");
  if (o.verify) {
    if (!o.sub.empty() || o.has_rooms || has_ttl || o.nbf_delay_s != 0) {
      return usage_error("--verify takes only --secret-file and --now");
    }
  } else if (o.sub.empty()) {
    return usage_error("--sub NAME is required to mint a token");
  }
  return -1;
}

std::string join_rooms(const std::vector<std::string>& rooms) {
  std::string s;
  for (const std::string& r : rooms) {
    if (!s.empty()) s.push_back(',');
    s += r;
  }
  return s;
}

// Prints "in N s" / "N s ago" relative to now.
std::string relative(uint64_t when, uint64_t now) {
  return when >= now ? "in " + std::to_string(when - now) + " s"
                     : std::to_string(now - when) + " s ago";
}

int verify(const TokenOptions& o, const std::string& secret, std::FILE* in, std::FILE* out,
           std::FILE* err, uint64_t now) {
  std::string token = o.token;
  if (token == "-") {
    // Reading from stdin keeps the token out of the process list and shell history.
    token.clear();
    char buf[1024];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0 && token.size() <= chat::kMaxTokenBytes) {
      token.append(buf, n);
    }
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' ||
                              token.back() == ' ' || token.back() == '\t')) {
      token.pop_back();
    }
  }
  const chat::TokenResult r = chat::verify_token(token, secret, now);
  std::fprintf(out, "status: %s\n", chat::token_status_name(r.status).data());
  const bool signed_ok = r.status == chat::TokenStatus::kOk ||
                         r.status == chat::TokenStatus::kExpired ||
                         r.status == chat::TokenStatus::kNotYetValid;
  if (signed_ok) {
    std::fprintf(out, "sub: %s\n", r.subject.c_str());
    if (!r.has_rooms) {
      std::fprintf(out, "rooms: (any)\n");
    } else if (r.rooms.empty()) {
      std::fprintf(out, "rooms: (none)\n");
    } else {
      std::fprintf(out, "rooms: %s\n", join_rooms(r.rooms).c_str());
    }
    std::fprintf(out, "exp: %llu (%s)\n", static_cast<unsigned long long>(r.expires_at),
                 relative(r.expires_at, now).c_str());
    if (r.not_before != 0) {
      std::fprintf(out, "nbf: %llu (%s)\n", static_cast<unsigned long long>(r.not_before),
                   relative(r.not_before, now).c_str());
    }
  }
  if (r.status != chat::TokenStatus::kOk) {
    std::fprintf(err, "%s: token rejected: %s (%s)\n", kTool.data(),
                 chat::token_status_name(r.status).data(), std::string(r.reason).c_str());
    return kTokenExitRejected;
  }
  return kTokenExitOk;
}

}  // namespace

void print_token_usage(std::FILE* out) {
  std::fputs(
      "usage: parley-token --secret-file FILE --sub NAME [--rooms A,B] [--ttl SECONDS]\n"
      "                    [--not-before SECONDS]\n"
      "       parley-token --verify TOKEN|- --secret-file FILE\n"
      "Mints an HS256 JWT for parleyd's /chat (sub = NAME, exp = now + ttl, default 3600 s;\n"
      "--rooms limits the rooms it may join, '' for none; --not-before delays its start),\n"
      "or verifies one ('-' reads it from stdin) and prints its claims.\n"
      "The secret file holds at least 32 bytes (one trailing newline is ignored), e.g.\n"
      "  head -c 32 /dev/urandom | base64 > secret && chmod 600 secret\n"
      "Options: --now SECONDS uses that clock instead of the system's.\n"
      "Exit status: 0 printed / valid, 1 token rejected, 2 usage or secret-file error.\n",
      out);
}

int run_token_tool(const std::vector<std::string>& args, std::FILE* in, std::FILE* out,
                   std::FILE* err, uint64_t now_s) {
  TokenOptions o;
  if (const int code = parse(args, o, out, err); code >= 0) return code;
  if (o.has_now) now_s = o.now_s;

  std::string secret, error;
  if (!chat::read_token_secret(o.secret_file.c_str(), secret, error)) {
    std::fprintf(err, "%s: %s\n", kTool.data(), error.c_str());
    return kTokenExitUsage;
  }
  struct stat st;
  if (::stat(o.secret_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    std::fprintf(err, "%s: warning: %s is readable by other users (chmod 600 it)\n", kTool.data(),
                 o.secret_file.c_str());
  }

  int code;
  if (o.verify) {
    code = verify(o, secret, in, out, err, now_s);
  } else {
    chat::TokenClaims claims;
    claims.subject = o.sub;
    if (o.has_rooms) claims.rooms = o.rooms;
    claims.issued_at = now_s;
    claims.not_before = o.nbf_delay_s != 0 ? now_s + o.nbf_delay_s : 0;
    claims.expires_at = now_s + o.nbf_delay_s + o.ttl_s;
    const std::string token = chat::mint_token(claims, secret);
    if (token.empty()) {
      std::fprintf(err, "%s: cannot mint a token for these claims (too many rooms?)\n",
                   kTool.data());
      code = kTokenExitUsage;
    } else {
      std::fprintf(out, "%s\n", token.c_str());
      code = kTokenExitOk;
    }
  }
  OPENSSL_cleanse(secret.data(), secret.size());
  return code;
}

}  // namespace tools
