#include "io/mapped_file.h"

#include "core/error.h"
#include "core/files.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lsync::io {

namespace {

// Live mappings, readable from the signal handler without locks: begin == 0 marks a free slot. More mappings
// than slots still work, they just are not protected (a checkpoint has 1 file, a TF.js model a few shards).
constexpr int kSlots = 256;
struct Slot {
    std::atomic<uintptr_t> begin{0};
    std::atomic<uintptr_t> end{0};
    std::atomic<bool> damaged{false};
    std::atomic<int> fd{-1};
};
std::mutex g_claim_mutex;  // claims and frees; the handler only reads
Slot g_slots[kSlots];
struct sigaction g_previous_bus {};

void on_sigbus(int sig, siginfo_t* info, void* ctx) {
    const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    for (Slot& s : g_slots) {
        const uintptr_t b = s.begin.load(std::memory_order_acquire);
        if (b == 0 || addr < b || addr >= s.end.load(std::memory_order_acquire)) continue;
        // The page's file bytes are gone. Put a zero page in its place (mmap is a plain system call, safe
        // here in practice though POSIX does not list it) so the copy in progress finishes; the flag makes
        // the next check_intact() refuse what was copied.
        const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
        void* p = reinterpret_cast<void*>(addr / page * page);
        if (::mmap(p, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            s.damaged.store(true);
            return;
        }
        break;
    }
    // Not ours (or the remap failed): behave as if we had never been here.
    if (g_previous_bus.sa_flags & SA_SIGINFO) {
        if (g_previous_bus.sa_sigaction) return g_previous_bus.sa_sigaction(sig, info, ctx);
    } else if (g_previous_bus.sa_handler != SIG_DFL && g_previous_bus.sa_handler != SIG_IGN &&
               g_previous_bus.sa_handler) {
        return g_previous_bus.sa_handler(sig);
    }
    ::signal(SIGBUS, SIG_DFL);  // returning re-runs the faulting access, which now kills the process
}

void install_sigbus_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGBUS, &sa, &g_previous_bus);
    });
}

int claim_slot(uintptr_t begin, uintptr_t end, int fd) {
    const std::lock_guard<std::mutex> lock(g_claim_mutex);
    for (int i = 0; i < kSlots; ++i) {
        Slot& s = g_slots[i];
        if (s.begin.load() != 0) continue;
        // begin last: a handler that sees the new begin must not see a stale end.
        s.end.store(end);
        s.damaged.store(false);
        s.fd.store(fd);
        s.begin.store(begin, std::memory_order_release);
        return i;
    }
    return -1;
}

bool shrunk(int fd, uint64_t mapped, off_t* now) {
    struct stat st{};
    if (fd < 0 || ::fstat(fd, &st) != 0) return false;
    *now = st.st_size;
    return static_cast<uint64_t>(st.st_size) < mapped;
}

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
    check_input_file(path, "model");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_error(ErrorCode::InputNotFile, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw_error(ErrorCode::InputNotFile, "cannot stat " + path + ": " + std::strerror(err));
    }
    install_sigbus_handler();
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw_error(ErrorCode::Weights, "cannot map " + path + ": " + std::strerror(err));
    }
    std::shared_ptr<MappedFile> m(new MappedFile());
    m->path_ = path;
    m->data_ = static_cast<const uint8_t*>(p);
    m->size_ = static_cast<size_t>(st.st_size);
    m->fd_ = fd;
    m->slot_ = claim_slot(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + m->size_, fd);
    return m;
}

void MappedFile::release(const void* p, size_t bytes) const {
    const auto* begin = static_cast<const uint8_t*>(p);
    if (!data_ || begin < data_ || begin + bytes > data_ + size_) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
    const uintptr_t last = (reinterpret_cast<uintptr_t>(begin) + bytes) / page * page;
    // Read-only private file mapping: dropping pages only costs a re-read, it can never lose data.
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void MappedFile::check_intact() const {
    off_t now = 0;
    const bool smaller = shrunk(fd_, size_, &now);
    const bool faulted = slot_ >= 0 && g_slots[slot_].damaged.load();
    if (smaller || faulted)
        throw_error(ErrorCode::Weights, path_ + " changed while being read (" +
                                            (smaller ? "truncated from " + std::to_string(size_) + " to " +
                                                           std::to_string(now) + " bytes"
                                                     : std::string("truncated")) +
                                            "; overwritten during the load?): its data cannot be trusted");
}

MappedFile::~MappedFile() {
    if (slot_ >= 0) {
        const std::lock_guard<std::mutex> lock(g_claim_mutex);
        g_slots[slot_].begin.store(0, std::memory_order_release);  // before the range goes away
    }
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
}

void check_mapped_files_intact() {
    const std::lock_guard<std::mutex> lock(g_claim_mutex);
    for (const Slot& s : g_slots) {
        const uintptr_t b = s.begin.load();
        off_t now = 0;
        if (b != 0 && (s.damaged.load() || shrunk(s.fd.load(), s.end.load() - b, &now)))
            throw_error(ErrorCode::Weights,
                        "a model file changed while being read (truncated; overwritten during the load?): the "
                        "data read from it cannot be trusted");
    }
}

}  // namespace lsync::io
