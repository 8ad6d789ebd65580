// What memory this process may take: MemAvailable from /proc/meminfo and the headroom of its own
// memory cgroup (v1 or v2), parsed by pure functions over file text so tests run on recorded files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace origami {

// The /proc/meminfo fields the budget reads, in bytes.
struct MemInfo {
  uint64_t total = 0;
  uint64_t free = 0;       // never used for the budget: page cache is not free, but reclaimable
  uint64_t available = 0;  // MemAvailable: free plus what the kernel can reclaim (clean page cache)
};
// Throws origami::Error naming `where` when MemTotal or MemAvailable is missing or malformed.
MemInfo ParseMeminfo(std::string_view text, std::string_view where = "/proc/meminfo");

// One line of /proc/self/cgroup: "4:memory:/a/b" (v1) or "0::/a/b" (v2, empty controller list).
struct CgroupEntry {
  std::string controllers;  // "memory", "cpu,cpuacct", or "" for the v2 unified hierarchy
  std::string path;         // the group, relative to the hierarchy's root
};
std::vector<CgroupEntry> ParseProcCgroup(std::string_view text,
                                         std::string_view where = "/proc/self/cgroup");

// A cgroup file system from /proc/self/mountinfo: where it is mounted and which part of the
// hierarchy the mount shows (a container usually sees its own group as "/").
struct CgroupMount {
  bool v2 = false;
  std::string root;         // field 4: the hierarchy path shown at the mount point
  std::string mount_point;  // field 5
  std::string options;      // super options: "rw,memory" names the v1 controller
};
std::vector<CgroupMount> ParseCgroupMounts(std::string_view text,
                                           std::string_view where = "/proc/self/mountinfo");

// A limit file's value: "max" (v2) or a v1 value of 2^62 or more ("9223372036854771712", the page-
// rounded LONG_MAX) mean no limit (nullopt). Throws origami::Error on anything but a number.
std::optional<uint64_t> ParseCgroupLimit(std::string_view text, std::string_view where);
// A usage file's value ("memory.current", "memory.usage_in_bytes").
uint64_t ParseCgroupUsage(std::string_view text, std::string_view where);

// The memory cgroup this process is in, and the tightest limit of it and its ancestors.
struct CgroupMemory {
  bool found = false;  // a memory cgroup is mounted and ours could be located
  bool v2 = false;
  std::string dir;  // our group's directory ("/sys/fs/cgroup/memory/process_api/...")
  std::optional<uint64_t>
      limit;           // the smallest limit on the way up (v2: memory.max and memory.high)
  uint64_t usage = 0;  // the usage of the group that sets that limit
  // limit - usage, floored at zero; nullopt when unlimited.
  std::optional<uint64_t> Headroom() const;
};

// The directory of our memory group from the parsed files (empty when none is mounted).
struct CgroupLocation {
  bool v2 = false;
  std::string dir;
  std::string mount_point;
};
CgroupLocation LocateMemoryCgroup(const std::vector<CgroupEntry>& groups,
                                  const std::vector<CgroupMount>& mounts);

// Everything the budget needs from the machine.
struct MachineMemory {
  MemInfo meminfo;
  CgroupMemory cgroup;
};
// Reads /proc and the cgroup files under `fs_root` ("/" on a live machine; a recorded tree in
// tests). A missing cgroup file system leaves cgroup.found false; malformed files throw
// origami::Error naming the file.
MachineMemory ReadMachineMemory(const std::string& fs_root = "/");

// This process's resident memory, from /proc/self/status: VmRSS now and VmHWM, the kernel's own
// high-water mark of it (so a peak between two scrapes is not missed).
struct ProcessMemory {
  uint64_t rss = 0;
  uint64_t rss_peak = 0;
};
// Throws origami::Error naming `where` when VmRSS or VmHWM is missing or malformed.
ProcessMemory ParseProcStatus(std::string_view text, std::string_view where = "/proc/self/status");
// The live process's figures; zeros when /proc cannot be read or parsed (metrics must not fail).
ProcessMemory ReadProcessMemory(const std::string& fs_root = "/");

// Sizes as people write them: "8G", "512M", "1.5GiB", "300k", "4096" (bytes). Units are powers
// of 1024 (K, M, G, T, with or without "i" and "B"). Throws origami::Error naming `flag`.
uint64_t ParseByteSize(std::string_view text, std::string_view flag);
// "1.3 GiB", "512.0 MiB", "12 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace origami
