// Memory of the machine: /proc/meminfo and cgroup files recorded under tests/data/memory (v1 as
// this CI machine mounts it, v2 as a systemd Docker host does, unlimited, malformed).
#include "util/sysmem.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "util/error.h"

namespace origami {
namespace {

const std::string kData = std::string(ORIGAMI_TEST_DATA_DIR) + "/memory/";

std::string Slurp(const std::string& name) {
  std::ifstream in(kData + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr uint64_t kMiB = 1 << 20;

TEST(Meminfo, LiveRecording) {
  const MemInfo m = ParseMeminfo(Slurp("meminfo_live.txt"));
  EXPECT_EQ(m.total, 24683748ull * 1024);
  EXPECT_EQ(m.free, 22017920ull * 1024);
  EXPECT_EQ(m.available, 23621920ull * 1024);
}

// A 20 GiB file just read: the page cache holds it, MemFree is 400 MiB, but the kernel can drop
// those pages, so MemAvailable (what the budget reads) is 21.9 GiB.
TEST(Meminfo, PageCacheFullOfALargeFileCountsAsAvailable) {
  const MemInfo m = ParseMeminfo(Slurp("meminfo_pagecache.txt"));
  EXPECT_LT(m.free, 500 * kMiB);
  EXPECT_EQ(m.available, 22987652ull * 1024);
  EXPECT_GT(m.available, 40 * m.free);
}

TEST(Meminfo, MalformedAndMissingFieldsAreClearErrors) {
  try {
    ParseMeminfo(Slurp("meminfo_malformed.txt"), "meminfo_malformed.txt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("meminfo_malformed.txt: malformed line 'MemAvailable: lots"),
        std::string::npos)
        << e.what();
  }
  try {
    ParseMeminfo(Slurp("meminfo_no_available.txt"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no MemAvailable"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ParseMeminfo(""), Error);
  EXPECT_THROW(ParseMeminfo("MemTotal: 99999999999999999999999 kB\nMemAvailable: 1 kB\n"), Error);
  EXPECT_THROW(ParseMeminfo("MemTotal: 1 MB\nMemAvailable: 1 kB\n"), Error);
  EXPECT_NO_THROW(ParseMeminfo("garbage without colon\nMemTotal: 1 kB\nMemAvailable: 1 kB"));
}

TEST(Cgroup, ParsesProcSelfCgroup) {
  const auto g = ParseProcCgroup("4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/user.slice\n");
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].controllers, "memory");
  EXPECT_EQ(g[0].path, "/process_api/abc");
  EXPECT_EQ(g[2].controllers, "");
  EXPECT_EQ(g[2].path, "/user.slice");
  EXPECT_THROW(ParseProcCgroup("memory:/x\n"), Error);
  EXPECT_THROW(ParseProcCgroup("x:memory:/x\n"), Error);
}

TEST(Cgroup, LimitValues) {
  EXPECT_EQ(ParseCgroupLimit("268435456\n", "f"), 268435456u);
  EXPECT_FALSE(ParseCgroupLimit("max\n", "f"));
  EXPECT_FALSE(ParseCgroupLimit("9223372036854771712\n", "f"));  // v1: LONG_MAX rounded to a page
  EXPECT_FALSE(ParseCgroupLimit("9223372036854775807", "f"));
  EXPECT_THROW(ParseCgroupLimit("", "f"), Error);
  EXPECT_THROW(ParseCgroupLimit("-1", "f"), Error);
  EXPECT_THROW(ParseCgroupLimit("12 MB", "f"), Error);
  EXPECT_THROW(ParseCgroupUsage("max", "f"), Error);
}

TEST(Cgroup, V1AsThisMachineMountsIt) {
  const MachineMemory m = ReadMachineMemory(kData + "v1");
  ASSERT_TRUE(m.cgroup.found);
  EXPECT_FALSE(m.cgroup.v2);  // the hybrid layout also mounts cgroup2 at unified/, without memory
  EXPECT_NE(m.cgroup.dir.find("/sys/fs/cgroup/memory/process_api/4b140fe2af42f5b402c75942e23655d4"),
            std::string::npos);
  ASSERT_TRUE(m.cgroup.limit);
  EXPECT_EQ(*m.cgroup.limit, 256 * kMiB);
  EXPECT_EQ(m.cgroup.usage, 10764288u);
  EXPECT_EQ(*m.cgroup.Headroom(), 256 * kMiB - 10764288u);
}

TEST(Cgroup, V1Unlimited) {
  const MachineMemory m = ReadMachineMemory(kData + "v1_unlimited");
  EXPECT_TRUE(m.cgroup.found);
  EXPECT_FALSE(m.cgroup.limit);
  EXPECT_FALSE(m.cgroup.Headroom());
}

// The parent's limit binds a child with none: 1 GiB with 768 MiB used leaves 256 MiB.
TEST(Cgroup, V1TighterParentBinds) {
  const MachineMemory m = ReadMachineMemory(kData + "v1_parent");
  ASSERT_TRUE(m.cgroup.limit);
  EXPECT_EQ(*m.cgroup.limit, 1024 * kMiB);
  EXPECT_EQ(*m.cgroup.Headroom(), 256 * kMiB);
}

TEST(Cgroup, V1MalformedLimitNamesTheFile) {
  try {
    ReadMachineMemory(kData + "v1_malformed");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory.limit_in_bytes: 'lots' is not a byte count"),
              std::string::npos)
        << e.what();
  }
}

// v2: memory.high (384 MiB) is tighter than memory.max (512 MiB); 128 MiB in use.
TEST(Cgroup, V2TakesTheLowerOfMaxAndHigh) {
  const MachineMemory m = ReadMachineMemory(kData + "v2");
  ASSERT_TRUE(m.cgroup.found);
  EXPECT_TRUE(m.cgroup.v2);
  ASSERT_TRUE(m.cgroup.limit);
  EXPECT_EQ(*m.cgroup.limit, 384 * kMiB);
  EXPECT_EQ(*m.cgroup.Headroom(), 256 * kMiB);
  EXPECT_LT(m.meminfo.free, 500 * kMiB);  // this recording also has the full page cache
}

TEST(Cgroup, V2NamespacedMountShowsOurGroupAsRoot) {
  const MachineMemory m = ReadMachineMemory(kData + "v2_ns");
  EXPECT_TRUE(m.cgroup.found);
  EXPECT_TRUE(m.cgroup.v2);
  EXPECT_FALSE(m.cgroup.limit);
}

TEST(Cgroup, NoneMounted) {
  const MachineMemory m = ReadMachineMemory(kData + "none");
  EXPECT_FALSE(m.cgroup.found);
  EXPECT_GT(m.meminfo.available, 0u);
  EXPECT_THROW(ReadMachineMemory(kData + "does-not-exist"), Error);
}

TEST(Cgroup, MountinfoMalformed) {
  EXPECT_THROW(ParseCgroupMounts("1 2 3 - cgroup cgroup rw,memory\n"), Error);
  EXPECT_THROW(ParseCgroupMounts("1 2 0:3 / /x rw\n"), Error);  // no separator
  EXPECT_TRUE(ParseCgroupMounts("").empty());
}

// The live machine: whatever it has, reading it must not throw.
TEST(Cgroup, LiveMachineReads) {
  const MachineMemory m = ReadMachineMemory();
  EXPECT_GT(m.meminfo.total, 0u);
}

TEST(ByteSize, Spellings) {
  EXPECT_EQ(ParseByteSize("8G", "--mem-budget"), 8ull << 30);
  EXPECT_EQ(ParseByteSize("512M", "f"), 512ull << 20);
  EXPECT_EQ(ParseByteSize("1.5GiB", "f"), 3ull << 29);
  EXPECT_EQ(ParseByteSize("1.5gb", "f"), 3ull << 29);
  EXPECT_EQ(ParseByteSize("300k", "f"), 300ull << 10);
  EXPECT_EQ(ParseByteSize("4096", "f"), 4096u);
  EXPECT_EQ(ParseByteSize("2 T", "f"), 2ull << 40);
  EXPECT_EQ(ParseByteSize("0", "f"), 0u);
  for (const char* bad : {"", "G", "-1G", "1.2.3G", "8X", "8GG", "1e400", "99999999999T"}) {
    try {
      ParseByteSize(bad, "--mem-budget");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--mem-budget"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(FormatBytes(1288490189), "1.2 GiB");
  EXPECT_EQ(FormatBytes(12), "12 B");
}

// /proc/self/status as a process sees it (VmHWM raised to 512 MiB, as after a freed peak): the
// metrics read RSS now and the kernel's high-water mark.
TEST(ProcStatus, RssAndHighWaterMark) {
  const ProcessMemory m = ParseProcStatus(Slurp("proc_status_live.txt"));
  EXPECT_EQ(m.rss, 1764ull * 1024);
  EXPECT_EQ(m.rss_peak, 512 * kMiB);
}

TEST(ProcStatus, MalformedAndMissingAreClearErrors) {
  try {
    ParseProcStatus(Slurp("proc_status_malformed.txt"), "status_malformed");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("status_malformed: malformed line 'VmRSS:"),
              std::string::npos)
        << e.what();
  }
  try {
    ParseProcStatus("Name:\tx\nVmRSS:\t 10 kB\n", "status");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no VmHWM line"), std::string::npos) << e.what();
  }
}

TEST(ProcStatus, LiveProcessReads) {
  const ProcessMemory m = ReadProcessMemory();
  EXPECT_GT(m.rss, 0u);
  EXPECT_GE(m.rss_peak, m.rss);
}

}  // namespace
}  // namespace origami
