/* allotd.c — the daemon's entry point (filled in by the foundation work). */
#include <stdio.h>
int main(void) { fputs("allotd: not yet\n", stderr); return 1; }
