/* check.c — the counters behind check.h. */
#include "check.h"

unsigned check_passed, check_failed;
