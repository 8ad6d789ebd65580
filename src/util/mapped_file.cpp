// mmap-based MappedFile.
#include "util/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace origami {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailKind(ErrorKind::kIo, "cannot open '{}': {}", path, std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    FailKind(ErrorKind::kIo, "cannot stat '{}': {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    FailKind(ErrorKind::kIo, "'{}' is not a regular file", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      FailKind(ErrorKind::kIo, "cannot map '{}': {}", path, std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

static bool Advise(const uint8_t* base, size_t size, size_t offset, size_t len, int advice) {
  if (!base || offset >= size) return false;
  if (len > size - offset) len = size - offset;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages inside the range: never touch a neighbour's bytes.
  uintptr_t begin = reinterpret_cast<uintptr_t>(base + offset);
  uintptr_t end = begin + len;
  if (advice == MADV_DONTNEED) {
    begin = (begin + page - 1) & ~(page - 1);
    end &= ~(page - 1);
  } else {
    begin &= ~(page - 1);
  }
  return end > begin && ::madvise(reinterpret_cast<void*>(begin), end - begin, advice) == 0;
}

// MADV_POPULATE_WRITE: Linux 5.14+. Once the kernel refuses it (EINVAL on older ones), later
// calls do nothing.
static bool PopulateWrite(const uint8_t* base, size_t size, size_t offset, size_t len) {
#ifdef MADV_POPULATE_WRITE
  static std::atomic<bool> unsupported{false};
  if (unsupported.load(std::memory_order_relaxed)) return false;
  errno = 0;
  if (Advise(base, size, offset, len, MADV_POPULATE_WRITE)) return true;
  if (errno == EINVAL) unsupported.store(true, std::memory_order_relaxed);
  return false;
#else
  (void)base, (void)size, (void)offset, (void)len;
  return false;
#endif
}

void MappedFile::Release(size_t offset, size_t len) const {
  Advise(data_, size_, offset, len, MADV_DONTNEED);
}

void MappedFile::Prefetch(size_t offset, size_t len) const {
  Advise(data_, size_, offset, len, MADV_WILLNEED);
}

AnonymousBuffer::AnonymousBuffer(size_t bytes, bool huge_pages) : size_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) FailKind(ErrorKind::kIo, "cannot allocate {} bytes: {}", bytes, std::strerror(errno));
#ifdef MADV_HUGEPAGE
  if (huge_pages) ::madvise(p, bytes, MADV_HUGEPAGE);  // a hint; without them it works the same
#endif
  data_ = static_cast<uint8_t*>(p);
}

bool AnonymousBuffer::Populate(size_t offset, size_t len) const {
  return PopulateWrite(data_, size_, offset, len);
}

AnonymousBuffer::~AnonymousBuffer() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace origami
