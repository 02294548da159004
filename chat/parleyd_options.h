#pragma once
// parleyd's options (DESIGN.md "Interfaces that others script against"). Each option is ONE
// entry of the table in parleyd_options.cpp (OptionSpec): its name feeds the command-line flag
// (--name), the config-file key (name) and the environment variable (PARLEY_NAME, '-' -> '_');
// its help text feeds --help (and so README.md and the man page); whether it is reloadable feeds
// SIGHUP. Layering (flag > env > file > default) lives in chat/parleyd/config.h.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace chat {

inline constexpr const char* kParleyVersion = "0.1.0";
// ParleydOptions::max_memory when --max-memory was not given.
inline constexpr uint64_t kAutoMemoryBudget = UINT64_MAX;

struct ParleydOptions {
  std::string listen = "127.0.0.1:8080";
  bool reuse_port = false;
  uint64_t max_message_size = 16u << 20;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t close_timeout_ms = 5000;
  uint32_t ping_interval_ms = 30000;        // heartbeat; 0 disables
  uint32_t pong_timeout_ms = 10000;
  uint32_t idle_timeout_ms = 0;            // 0: never
  uint32_t max_pings_per_second = 0;       // heartbeat budget of the whole server, shared by the
                                           // workers; 0: auto (kPingsPerCpuPerSecond per CPU)
  uint32_t drain_timeout_ms = 5000;        // graceful shutdown on SIGTERM/SIGINT
  uint64_t max_buffered = 1u << 20;        // write-queue cap per connection
  // Budget for all write queues of a worker (issue 13); kAutoMemoryBudget: a share of the
  // machine's memory (reactor::default_memory_budget), 0: off.
  uint64_t max_memory = kAutoMemoryBudget;
  bool slow_consumer_drop = false;         // past the cap: drop messages instead of closing 1008
  bool deflate = true;                     // accept permessage-deflate offers (RFC 7692)
  uint64_t deflate_threshold = 64;         // smaller outgoing messages are sent uncompressed
  bool io_uring = false;                   // batch plain output through io_uring (issue 18)
  uint32_t max_connections = 0;            // 0: the fd limit
  uint32_t max_connections_per_ip = 1000;  // per address (IPv6 /64) and worker; 0: unlimited
  uint32_t max_handshakes_per_ip = 32;     // incomplete handshakes per address; 0: unlimited
  uint32_t max_handshakes = 0;             // incomplete handshakes in all; 0: a quarter of the fd limit
  uint32_t workers = 1;                    // processes sharing the port with SO_REUSEPORT
  uint32_t history_size = 50;              // chat: messages kept per room (0: none)
  uint64_t max_text_bytes = 4096;          // chat: longer msg/dm text -> error text_too_long
  uint32_t max_rooms_per_connection = 32;  // chat: more joins -> error too_many_rooms
  // Access control and abuse limits on /chat (issue 7); --auth-secret covers /echo too.
  std::string auth_secret_file;            // set: /chat requires a token signed with this secret
  std::string allow_origin;                // --allow-origin list (origin_policy.h); empty: any Origin
  bool deny_missing_origin = false;        // refuse /chat upgrades without an Origin header
  uint32_t rate_limit = 20;                // chat messages per second per connection; 0: off
  uint32_t rate_burst = 40;                // bucket size for rate_limit
  uint32_t handshake_rate = 0;             // /chat upgrades per second per address; 0: off
  uint32_t max_room_members = 10000;       // 0: unlimited
  // Memory bounds on /chat (issue 13).
  uint64_t history_memory = 64u << 20;     // bytes of history all rooms together; 0: no budget
  uint32_t max_rooms = 100000;             // live rooms in total; 0: unlimited
  uint32_t max_rooms_per_ip = 1000;        // live rooms created from one address; 0: unlimited
  bool echo = true;                        // serve /echo (with --auth-secret: token required)
  // Durable history (issue 14).
  std::string store = "parley.db";         // SQLite file; "none": memory only
  bool store_given = false;                // --store was set (flag, env or file)
  std::string redis;                       // --redis redis://HOST:PORT[/DB]; empty: no Redis (issue 15)
  bool sync_full = false;                  // --sync full: fsync each commit (survives power loss)
  uint32_t history_keep = 10000;           // messages kept per room / DM conversation in the store
  uint32_t recovery_limit = 1000;          // most messages a join with since_seq gets
  uint32_t dedup_window_minutes = 10;      // a client id is recognised at least this long
  uint64_t history_max_age_seconds = 0;    // store retention by age (--history-max-age); 0: off
  uint32_t resume_window_seconds = 120;    // a dropped session is held this long for resume; 0: off
  // TLS (wss://, https): both set or both empty.
  std::string tls_cert_file;               // PEM certificate chain
  std::string tls_key_file;                // PEM private key
  // Operations (issue 16).
  std::string config_file;                 // --config / PARLEY_CONFIG: TOML file; empty: none
  std::string log_level = "info";          // error|warn|info|debug (chat/parleyd/log.h)
  std::string log_format = "text";         // text|json
  std::string metrics_listen;              // HOST:PORT of a metrics-only listener; empty: none
  bool check_config = false;               // --check-config: validate, print, exit
  bool show_help = false;
  bool show_version = false;
};

// Whether SIGHUP may change an option in a running parleyd.
enum class Reload : uint8_t {
  kRestart,  // read at start only; a changed value is reported as needing a restart
  kLive,     // applied to new work at once (new connections, next message)
};

// Flags of an OptionSpec.
inline constexpr uint32_t kOptionSecret = 1;   // never printed (--check-config shows "(set)")
inline constexpr uint32_t kOptionEnvOnly = 2;  // no flag and no file key: PARLEY_NAME only
inline constexpr uint32_t kOptionList = 4;     // a repeated flag adds to the list (comma-joined)
inline constexpr uint32_t kOptionNoFile = 8;   // not a config-file key (--config itself)
inline constexpr uint32_t kOptionNoEnv = 16;   // no PARLEY_ variable (--check-config)

// Where an option's value is stored in ParleydOptions.
using OptionField = std::variant<bool ParleydOptions::*, uint32_t ParleydOptions::*, uint64_t ParleydOptions::*,
                                 std::string ParleydOptions::*>;

// The one definition of an option. Kinds follow from the field and the fields below:
//   bool without `choices`      a switch: --name (no value); file: true/false; env: 1/0/true/false
//   bool with choices "A|B"     a value A (false) or B (true), e.g. "close|drop"
//   uint32_t / uint64_t         a decimal in [min, max]; `sizes`: K/M/G (binary) suffixes too
//   std::string with choices    one of the words "a|b|c"
//   std::string                 any text, non-empty unless min == 0; `check` validates it
struct OptionSpec {
  std::string_view name = {};        // "rate-limit": --rate-limit, key rate-limit, PARLEY_RATE_LIMIT
  std::string_view value = {};       // the value's name in --help ("N", "BYTES"); empty for a switch
  OptionField field = {};
  Reload reload = Reload::kRestart;
  uint64_t min = 0;             // numbers: the range; text: 1 = must not be empty
  uint64_t max = UINT64_MAX;
  bool sizes = false;           // numbers: accepts K/M/G suffixes
  bool durations = false;       // numbers: seconds, or with an s/m/h/d suffix (parse_duration_seconds)
  std::string_view choices = {};     // "close|drop", "error|warn|info|debug"
  std::string_view expected = {};    // the "(...)" of an error message, e.g. "0 (off) to 1000000"
  // Text values: extra validation; false with `why` set (one line) rejects the value.
  bool (*check)(std::string_view value, std::string& why) = nullptr;
  uint32_t flags = 0;           // kOption*
  std::string_view help = {};        // --help text after the synopsis; '\n' starts an indented line
  std::string_view heading = {};     // printed (after a blank line) before this option in --help
  std::string_view epilogue = {};    // printed verbatim after this option in --help
};

// Every option, in --help order.
std::span<const OptionSpec> parleyd_option_specs();
// The option called `name` (without dashes), or nullptr.
const OptionSpec* find_parleyd_option(std::string_view name);

// Sets `spec`'s field in `out` from `text` (a flag's, env var's or file's value; a switch takes
// "true"/"false"/"1"/"0"/"on"/"off"). `append` joins a kOptionList value to the current one.
// False with `why` (the "(...)" part: what was expected) on a bad value; `out` is then unchanged.
bool set_parleyd_option(const OptionSpec& spec, std::string_view text, bool append, ParleydOptions& out,
                        std::string& why);
// The value of `spec` in `options` as text that set_parleyd_option() accepts back.
std::string parleyd_option_text(const OptionSpec& spec, const ParleydOptions& options);

// The automatic heartbeat budget per online CPU: about a fifth of a core at the ~20 us a ping
// and its pong cost on loopback (both ends), leaving the rest for the connections' traffic.
inline constexpr uint32_t kPingsPerCpuPerSecond = 10000;

// The ping budget of one worker: `options.max_pings_per_second` (or the automatic one for
// `cpus` CPUs when it is 0) split evenly over the workers, at least 1.
uint32_t worker_ping_budget(const ParleydOptions& options, uint32_t cpus);

// Parses a duration such as 30d, 12h, 90m, 45s or 3600 (seconds) into seconds; false when it is
// not one (a number with at most one of the suffixes s, m, h, d, at most 100 years).
bool parse_duration_seconds(const std::string& text, uint64_t& seconds);

// Parses argv and the --config file it names (no environment; parleyd itself uses
// load_parleyd_config() in chat/parleyd/config.h); on failure returns false and sets `error` to
// one line for the user. Defined in chat/parleyd/config.cpp.
bool parse_parleyd_options(const std::vector<std::string>& args, ParleydOptions& out, std::string& error);

// The --help text, generated from the table.
std::string parleyd_usage();

}  // namespace chat
