/* The floor for any passthrough shim, for scripts/bench's passthrough section: a program
 * that does nothing but exec the native bb named by BB_REMOTE_NATIVE_BIN with its own argv.
 * Whatever a shim adds above this row is its own cost; this row is what a second exec
 * costs on the machine (kernel exec, the dynamic loader for libc, process teardown).
 *
 * usage: BB_REMOTE_NATIVE_BIN=/path/to/bb exec_floor ARGS...
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  (void)argc;
  const char *bb = getenv("BB_REMOTE_NATIVE_BIN");
  if (bb == NULL) {
    fputs("exec_floor: BB_REMOTE_NATIVE_BIN is not set\n", stderr);
    return 69;
  }
  execv(bb, argv);
  perror(bb);
  return 69;
}
