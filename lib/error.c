/*
 * error.c -- fm_strerror() and the assertion hook.
 *
 * Every message says what is wrong and, where there is one, what to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "fmalloc.h"

const char *fm_strerror(int err)
{
    switch (err) {
    case 0:
        return "Success";
    case FM_EBADMAGIC:
        return "Not an fmalloc arena: the file does not start with the arena magic";
    case FM_EVERSION:
        return "The arena was written in a file format version this library cannot read";
    case FM_ECHECKSUM:
        return "The arena header is damaged: its checksum does not match";
    case FM_ETRUNCATED:
        return "The arena file is shorter than its header says: it was truncated";
    case FM_ECORRUPT:
        return "The arena heap is inconsistent and cannot be recovered; fm_check_message() says where (fm_last_error_detail() after a failed open)";
    case FM_ELOCKED:
        return "The arena is open elsewhere (another process, or another fm_open in this one): close it there first";
    case FM_EPAGESIZE:
        return "The arena was made on a machine with a different page size";
    case FM_EEMPTY:
        return "The file is empty or zero-filled, not yet an arena: open it with FM_CREATE to make one";
    case FM_EGEOMETRY:
        return "The arena header describes an impossible layout (offsets or sizes)";
    case FM_EBADPTR:
        return "The pointer is not a live block of this arena (outside it, misaligned, or already freed)";
    case FM_ENOTFILE:
        return "The path is not a regular file";
    default:
        if (err > 0)
            return strerror(err);
        return "Unknown fmalloc error";
    }
}

void fm__assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "fmalloc: internal assertion failed: %s (%s:%d)\n", what, file, line);
    abort();
}
