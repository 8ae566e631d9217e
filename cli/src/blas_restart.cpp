// The restart of gradgraph under an address-space limit (ulimit -v). OpenBLAS starts a worker thread
// per core when it loads, before main(): under a limit each worker looped forever at 100% CPU on a
// 128 MiB buffer it could not map (a hang where exit 7 was promised), and under a tighter one
// OpenBLAS, unable to map a thread's stack, raised SIGINT on the process. So before any library
// initialiser runs (the executable's .preinit_array), the program re-executes itself once with
// OPENBLAS_NUM_THREADS=1: OpenBLAS starts no worker, kernel::set_num_threads adds the threads asked
// for when their buffers fit, and the first product checks its own buffer before OpenBLAS takes it.
#include <cli/cli.hpp>

#include <cstdlib>
#include <cstring>

#include <sys/resource.h>
#include <unistd.h>

namespace gg::cli {

namespace {

constexpr const char* k_marker = "GRADGRAPH_BLAS_RESTART";
/// The environment of the restart: no allocation is possible this early (libc is not initialised).
char* g_environment[4096];

bool starts_with(const char* entry, const char* name) {
  const std::size_t n = std::strlen(name);
  return std::strncmp(entry, name, n) == 0 && entry[n] == '=';
}

void restart_before_libraries(int, char** argv, char** envp) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return;
  std::size_t n = 0;
  for (char** e = envp; *e != nullptr; ++e) {
    // Already restarted, or OpenBLAS's threads chosen by the user: nothing to do.
    for (const char* name : {k_marker, "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"})
      if (starts_with(*e, name)) return;
    if (n + 3 >= std::size(g_environment)) return;
    g_environment[n++] = *e;
  }
  static char threads[] = "OPENBLAS_NUM_THREADS=1", marker[] = "GRADGRAPH_BLAS_RESTART=1";
  g_environment[n++] = threads;
  g_environment[n++] = marker;
  g_environment[n] = nullptr;
  ::execve("/proc/self/exe", argv, g_environment); // returns only when it failed: go on as before
}

__attribute__((section(".preinit_array"), used)) void (*const g_restart)(int, char**,
                                                                         char**) = restart_before_libraries;

} // namespace

void end_blas_restart() {
  if (std::getenv(k_marker) == nullptr) return;
  // The setting was for OpenBLAS's start, not for the programs gradgraph runs (Graphviz).
  ::unsetenv(k_marker);
  ::unsetenv("OPENBLAS_NUM_THREADS");
}

} // namespace gg::cli
