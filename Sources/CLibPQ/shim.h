#ifndef TALLY_CLIBPQ_SHIM_H
#define TALLY_CLIBPQ_SHIM_H
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#elif __has_include(<postgresql/libpq-fe.h>)
#include <postgresql/libpq-fe.h>
#else
#error "libpq-fe.h not found: install libpq-dev (make deps does this)"
#endif
#endif
