// origami: the command-line entry point; each subcommand lives in its own file.
#include <cstdio>

int main() {
  std::puts("origami");
  return 0;
}
