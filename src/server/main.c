/* server/main.c: placeholder until the server lands. */
#include <stdio.h>
int main(void) {
  puts("inferd " INFERD_VERSION);
  return 0;
}
