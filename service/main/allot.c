/* allot.c — the CLI's entry point (filled in by the foundation work). */
#include <stdio.h>
int main(void) { fputs("allot: not yet\n", stderr); return 1; }
