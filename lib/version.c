/*
 * version.c -- fm_version(): which library a program is running with.
 *
 * Layer: api (public entry point, no state).  The numbers are the header's
 * macros as compiled into the library, so a program compiled against one
 * fmalloc.h and run with another libfmalloc.so.0 sees the library's, not
 * its own header's.  meson.build keeps the macros equal to the project
 * version.
 */
#include <fmalloc.h>

const char *fm_version(int *major, int *minor, int *patch, int *format)
{
    if (major)
        *major = FM_VERSION_MAJOR;
    if (minor)
        *minor = FM_VERSION_MINOR;
    if (patch)
        *patch = FM_VERSION_PATCH;
    if (format)
        *format = FM_FORMAT_VERSION;
    return FM_VERSION_STRING;
}
