// Zero-copy weights: a GGUF / safetensors file mapped read-only, handed to JS as one external ArrayBuffer whose
// typed-array views are the weights the kernels read. MAP_PRIVATE + PROT_READ: the file can never be changed
// through the mapping, and a private read-only mapping costs no commit charge, so a model larger than RAM + swap
// still maps (pages are then read on demand and dropped under pressure instead of swapped).
#include "mmap.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#define XV_HAVE_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#else
#define XV_HAVE_MMAP 0
#endif

namespace xv {

#if XV_HAVE_MMAP
namespace {

// Live mappings (start → length), so release() only ever drops pages of a file mapping: on an ordinary
// ArrayBuffer MADV_DONTNEED would zero its memory. Shared by every worker thread's instance of the addon.
std::mutex live_mu;
std::map<uintptr_t, size_t> live;

bool is_mapping(const void* data, size_t len) {
  std::lock_guard<std::mutex> g(live_mu);
  const auto it = live.find(reinterpret_cast<uintptr_t>(data));
  return it != live.end() && it->second == len;
}

// The finalizer of the external ArrayBuffer: runs once V8 has collected it and every view on it.
void unmap(napi_env, void* data, void* hint) {
  const size_t len = static_cast<size_t>(reinterpret_cast<uintptr_t>(hint));
  {
    std::lock_guard<std::mutex> g(live_mu);
    live.erase(reinterpret_cast<uintptr_t>(data));
  }
  munmap(data, len);
}

[[noreturn]] void fail(const Napi::Env& env, const std::string& what, int err) {
  throw Napi::Error::New(env, what + ": " + std::strerror(err));
}

}  // namespace
#endif

// A whole number ≥ 0 from argument i (offsets and lengths reach past 2^32, so doubles, not int32).
static bool whole(const Napi::Value& v, double* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9e15 && d == static_cast<double>(static_cast<int64_t>(d)))) return false;
  *out = d;
  return true;
}

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  double offD = 0, lenD = 0;
  if (info.Length() < 3 || !info[0].IsString() || !whole(info[1], &offD) || !whole(info[2], &lenD))
    throw Napi::TypeError::New(env, "mapFile(path: string, offset: number, length: number): whole numbers ≥ 0");
#if XV_HAVE_MMAP
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const size_t off = static_cast<size_t>(offD), len = static_cast<size_t>(lenD);
  if (off % static_cast<size_t>(sysconf(_SC_PAGESIZE)) != 0)
    throw Napi::RangeError::New(env, "mapFile: offset " + std::to_string(off) + " is not a multiple of the page size");
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(env, "cannot open " + path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    fail(env, "cannot stat " + path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    throw Napi::Error::New(env, path + " is not a regular file");
  }
  if (off + len > static_cast<size_t>(st.st_size)) {
    close(fd);
    throw Napi::Error::New(env, path + " is " + std::to_string(st.st_size) + " bytes, shorter than the range asked for (" +
                                    std::to_string(off + len) + "): it changed or was truncated");
  }
  if (len == 0) {
    close(fd);
    return Napi::ArrayBuffer::New(env, 0);  // mmap rejects length 0
  }
  void* p = mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(off));
  const int err = errno;
  close(fd);  // the mapping keeps the file open
  if (p == MAP_FAILED) fail(env, "cannot map " + path, err);
  {
    std::lock_guard<std::mutex> g(live_mu);
    live[reinterpret_cast<uintptr_t>(p)] = len;
  }
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, len, unmap, reinterpret_cast<void*>(len), &ab) != napi_ok) {
    {
      std::lock_guard<std::mutex> g(live_mu);
      live.erase(reinterpret_cast<uintptr_t>(p));
    }
    // the engine refused (too large, or no external buffers): drop its exception, report ours
    napi_value pending;
    napi_get_and_clear_last_exception(env, &pending);
    munmap(p, len);
    throw Napi::Error::New(env, "cannot wrap " + std::to_string(len) + " mapped bytes of " + path + " in an ArrayBuffer");
  }
  return Napi::Value(env, ab);
#else
  return env.Undefined();
#endif
}

Napi::Value Populate(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArrayBuffer() || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "populate(buffer: ArrayBuffer, offset: number, length: number)");
  Napi::ArrayBuffer b = info[0].As<Napi::ArrayBuffer>();
  const double off = info[1].As<Napi::Number>().DoubleValue(), len = info[2].As<Napi::Number>().DoubleValue();
  const double size = static_cast<double>(b.ByteLength());
  if (!(off >= 0 && len >= 0 && off == static_cast<double>(static_cast<int64_t>(off)) &&
        len == static_cast<double>(static_cast<int64_t>(len)) && off + len <= size))
    throw Napi::RangeError::New(env, "populate: [offset, offset + length) must be whole numbers inside the buffer");
  if (len == 0) return env.Undefined();
  const uint8_t* base = static_cast<const uint8_t*>(b.Data());
#if XV_HAVE_MMAP
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t a = (reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(off)) & ~(page - 1);
  const uintptr_t z = reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(off + len);
#if defined(__linux__)
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL and we touch the pages below
#endif
  // One call faults the whole range in (and reports an I/O error as EFAULT/EIO instead of SIGBUS).
  if (madvise(reinterpret_cast<void*>(a), z - a, MADV_POPULATE_READ) == 0) return env.Undefined();
  madvise(reinterpret_cast<void*>(a), z - a, MADV_WILLNEED);  // start the reads before touching them
#endif
  // Touch one byte per page: each read fault maps the page (and the kernel's fault-around neighbours).
  volatile uint8_t sink = 0;
  for (uintptr_t p = a < reinterpret_cast<uintptr_t>(base) ? reinterpret_cast<uintptr_t>(base) : a; p < z; p += page)
    sink ^= *reinterpret_cast<const volatile uint8_t*>(p);
  (void)sink;
#else
  (void)base;
#endif
  return env.Undefined();
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  double off = 0, len = 0;
  if (info.Length() < 3 || !info[0].IsArrayBuffer() || !whole(info[1], &off) || !whole(info[2], &len))
    throw Napi::TypeError::New(env, "release(buffer: ArrayBuffer, offset: number, length: number)");
  Napi::ArrayBuffer b = info[0].As<Napi::ArrayBuffer>();
  if (off + len > static_cast<double>(b.ByteLength()))
    throw Napi::RangeError::New(env, "release: [offset, offset + length) must lie inside the buffer");
#if XV_HAVE_MMAP
  if (!is_mapping(b.Data(), b.ByteLength()))
    throw Napi::TypeError::New(env, "release: the buffer is not one mapFile returned");
  // only pages wholly inside the range: a neighbour tensor sharing an edge page keeps it mapped
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t p = reinterpret_cast<uintptr_t>(b.Data()) + static_cast<uintptr_t>(off);
  const uintptr_t a = (p + page - 1) & ~(page - 1), z = (p + static_cast<uintptr_t>(len)) & ~(page - 1);
  if (z > a) return Napi::Boolean::New(env, madvise(reinterpret_cast<void*>(a), z - a, MADV_DONTNEED) == 0);
#endif
  return Napi::Boolean::New(env, false);
}

}  // namespace xv
