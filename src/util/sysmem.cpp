// Reading the machine's memory: /proc/meminfo, /proc/self/cgroup, /proc/self/mountinfo and the
// memory cgroup's limit and usage files.
#include "util/sysmem.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace origami {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Whole file, or nullopt when it cannot be opened (a missing cgroup file is not an error).
std::optional<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Join(const std::string& root, std::string_view path) {
  std::string r = root;
  while (!r.empty() && r.back() == '/') r.pop_back();
  if (path.empty() || path.front() != '/') r += '/';
  r += path;
  return r;
}

// v1 counters are LONG_MAX rounded down to a page when unset; anything from 2^62 up is "none".
constexpr uint64_t kUnlimited = uint64_t{1} << 62;

}  // namespace

MemInfo ParseMeminfo(std::string_view text, std::string_view where) {
  MemInfo m;
  bool has_total = false, has_available = false;
  for (std::string_view line : Lines(text)) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    if (key != "MemTotal" && key != "MemFree" && key != "MemAvailable") continue;
    const auto f = Fields(Trim(line.substr(colon + 1)));
    const auto v = f.empty() ? std::nullopt : ParseU64(f[0]);
    if (!v || f.size() > 2 || (f.size() == 2 && f[1] != "kB") || *v > (UINT64_MAX >> 10))
      Fail("{}: malformed line '{}' (want 'Key: N kB')", where, line);
    const uint64_t bytes = f.size() == 2 ? *v << 10 : *v;
    if (key == "MemTotal")
      m.total = bytes, has_total = true;
    else if (key == "MemFree")
      m.free = bytes;
    else
      m.available = bytes, has_available = true;
  }
  if (!has_total) Fail("{}: no MemTotal line", where);
  // Kernels before 3.14 have no MemAvailable; MemFree would count the page cache as used, so
  // refuse to guess rather than under- or overstate.
  if (!has_available)
    Fail("{}: no MemAvailable line (kernel older than 3.14?); give --mem-budget", where);
  return m;
}

ProcessMemory ParseProcStatus(std::string_view text, std::string_view where) {
  ProcessMemory m;
  bool has_rss = false, has_hwm = false;
  for (std::string_view line : Lines(text)) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    if (key != "VmRSS" && key != "VmHWM") continue;
    // "VmRSS:\t   12345 kB": the value is tab- and space-padded.
    std::string value(Trim(line.substr(colon + 1)));
    for (char& c : value)
      if (c == '\t') c = ' ';
    const auto f = Fields(value);
    const auto v = f.size() == 2 && f[1] == "kB" ? ParseU64(f[0]) : std::nullopt;
    if (!v || *v > (UINT64_MAX >> 10))
      Fail("{}: malformed line '{}' (want 'Key: N kB')", where, line);
    (key == "VmRSS" ? m.rss : m.rss_peak) = *v << 10;
    (key == "VmRSS" ? has_rss : has_hwm) = true;
  }
  if (!has_rss || !has_hwm) Fail("{}: no {} line", where, has_rss ? "VmHWM" : "VmRSS");
  return m;
}

ProcessMemory ReadProcessMemory(const std::string& fs_root) {
  const auto text = ReadText(Join(fs_root, "proc/self/status"));
  if (!text) return {};
  try {
    return ParseProcStatus(*text);
  } catch (const Error&) {
    return {};
  }
}

std::vector<CgroupEntry> ParseProcCgroup(std::string_view text, std::string_view where) {
  std::vector<CgroupEntry> out;
  for (std::string_view line : Lines(text)) {
    line = Trim(line);
    if (line.empty()) continue;
    const size_t a = line.find(':');
    const size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos || !ParseU64(line.substr(0, a)))
      Fail("{}: malformed line '{}' (want 'id:controllers:path')", where, line);
    out.push_back({std::string(line.substr(a + 1, b - a - 1)), std::string(line.substr(b + 1))});
  }
  return out;
}

std::vector<CgroupMount> ParseCgroupMounts(std::string_view text, std::string_view where) {
  std::vector<CgroupMount> out;
  for (std::string_view line : Lines(text)) {
    const auto f = Fields(Trim(line));
    if (f.empty()) continue;
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    // id parent major:minor root mount-point options [optional fields...] - type source
    // super-options
    if (dash < 6 || dash + 1 >= f.size()) Fail("{}: malformed line '{}'", where, Trim(line));
    const std::string_view type = f[dash + 1];
    if (type != "cgroup" && type != "cgroup2") continue;
    CgroupMount m;
    m.v2 = type == "cgroup2";
    m.root = f[3];
    m.mount_point = f[4];
    m.options = dash + 3 < f.size() ? std::string(f[dash + 3]) : "";
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<uint64_t> ParseCgroupLimit(std::string_view text, std::string_view where) {
  const std::string_view t = Trim(text);
  if (t == "max") return std::nullopt;
  const auto v = ParseU64(t);
  if (!v) Fail("{}: '{}' is not a byte count or 'max'", where, t);
  if (*v >= kUnlimited) return std::nullopt;
  return v;
}

uint64_t ParseCgroupUsage(std::string_view text, std::string_view where) {
  const std::string_view t = Trim(text);
  const auto v = ParseU64(t);
  if (!v) Fail("{}: '{}' is not a byte count", where, t);
  return *v;
}

std::optional<uint64_t> CgroupMemory::Headroom() const {
  if (!limit) return std::nullopt;
  return *limit > usage ? *limit - usage : 0;
}

CgroupLocation LocateMemoryCgroup(const std::vector<CgroupEntry>& groups,
                                  const std::vector<CgroupMount>& mounts) {
  auto has_memory = [](std::string_view list) {
    while (!list.empty()) {
      const size_t c = list.find(',');
      if (list.substr(0, c) == "memory") return true;
      if (c == std::string_view::npos) break;
      list.remove_prefix(c + 1);
    }
    return false;
  };
  // The group's path below the mount: a container's mount usually shows its own group as "/".
  auto below = [](const std::string& path, const std::string& root) -> std::string {
    if (root == "/" || root.empty()) return path;
    if (path.compare(0, root.size(), root) == 0 &&
        (path.size() == root.size() || path[root.size()] == '/'))
      return path.substr(root.size());
    return "/";  // outside what the mount shows (a namespaced view): the mount's root is ours
  };
  // The v1 memory controller first: a hybrid machine attaches memory to one hierarchy only.
  for (const CgroupEntry& g : groups) {
    if (!has_memory(g.controllers)) continue;
    for (const CgroupMount& m : mounts)
      if (!m.v2 && has_memory(m.options))
        return {false, Join(m.mount_point, below(g.path, m.root)), m.mount_point};
  }
  for (const CgroupEntry& g : groups) {
    if (!g.controllers.empty()) continue;
    for (const CgroupMount& m : mounts)
      if (m.v2) return {true, Join(m.mount_point, below(g.path, m.root)), m.mount_point};
  }
  return {};
}

namespace {

// Walks from our group up to the mount point, keeping the tightest limit and its group's usage.
CgroupMemory ReadCgroup(const CgroupLocation& loc) {
  CgroupMemory c;
  if (loc.dir.empty()) return c;
  c.v2 = loc.v2;
  c.dir = loc.dir;
  const char* usage_file = loc.v2 ? "memory.current" : "memory.usage_in_bytes";
  std::string dir = loc.dir;
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  std::string mount = loc.mount_point;
  while (!mount.empty() && mount.back() == '/') mount.pop_back();
  for (;;) {
    std::optional<uint64_t> limit;
    std::vector<std::string> limit_files;
    if (loc.v2)
      limit_files = {"memory.max", "memory.high"};
    else
      limit_files = {"memory.limit_in_bytes"};
    for (const std::string& name : limit_files) {
      const std::string path = dir + "/" + name;
      if (auto text = ReadText(path)) {
        c.found = true;
        if (auto l = ParseCgroupLimit(*text, path)) limit = limit ? std::min(*limit, *l) : *l;
      }
    }
    const std::string upath = dir + "/" + usage_file;
    if (auto text = ReadText(upath)) {
      c.found = true;
      const uint64_t usage = ParseCgroupUsage(*text, upath);
      const uint64_t head = limit ? (*limit > usage ? *limit - usage : 0) : UINT64_MAX;
      const auto best = c.Headroom();
      if (limit && (!best || head < *best)) c.limit = limit, c.usage = usage;
    }
    if (dir.size() <= mount.size()) break;
    const size_t slash = dir.rfind('/');
    if (slash == std::string::npos || slash < mount.size()) break;
    dir.resize(slash);
  }
  return c;
}

}  // namespace

MachineMemory ReadMachineMemory(const std::string& fs_root) {
  MachineMemory m;
  const std::string meminfo = Join(fs_root, "/proc/meminfo");
  const auto text = ReadText(meminfo);
  if (!text) FailKind(ErrorKind::kIo, "cannot read {}: give --mem-budget", meminfo);
  m.meminfo = ParseMeminfo(*text, meminfo);
  const std::string cg = Join(fs_root, "/proc/self/cgroup"),
                    mi = Join(fs_root, "/proc/self/mountinfo");
  const auto cg_text = ReadText(cg), mi_text = ReadText(mi);
  if (!cg_text || !mi_text) return m;  // no cgroups (not Linux, or /proc without them)
  CgroupLocation loc =
      LocateMemoryCgroup(ParseProcCgroup(*cg_text, cg), ParseCgroupMounts(*mi_text, mi));
  if (loc.dir.empty()) return m;
  // Mount points are absolute on the live machine; a recorded tree keeps them under its root.
  loc.dir = Join(fs_root, loc.dir);
  loc.mount_point = Join(fs_root, loc.mount_point);
  m.cgroup = ReadCgroup(loc);
  return m;
}

uint64_t ParseByteSize(std::string_view text, std::string_view flag) {
  const std::string_view t = Trim(text);
  size_t i = 0;
  while (i < t.size() && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.')) ++i;
  const std::string number(t.substr(0, i));
  std::string unit(Trim(t.substr(i)));
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double value = 0;
  size_t used = 0;
  try {
    value = std::stod(number, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (number.empty() || used != number.size() || !std::isfinite(value))
    Fail("{}: '{}' is not a size (e.g. 8G, 512M, 1.5GiB or bytes)", flag, t);
  if (unit.size() >= 2 && unit.back() == 'B') unit.pop_back();  // "GB", "GIB" -> "G", "GI"
  if (unit.size() == 2 && unit.back() == 'I') unit.pop_back();
  double scale = 1;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "K")
    scale = 1024.0;
  else if (unit == "M")
    scale = 1024.0 * 1024;
  else if (unit == "G")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else
    Fail("{}: unknown unit in '{}' (use K, M, G or T)", flag, t);
  const double bytes = value * scale;
  if (bytes >= 1.8e19) Fail("{}: '{}' is too large", flag, t);
  return static_cast<uint64_t>(bytes);
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double b = static_cast<double>(bytes);
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", b, units[u]);
}

}  // namespace origami
