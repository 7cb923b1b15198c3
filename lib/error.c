/*
 * error.c -- fm_strerror() and the assertion hook.
 *
 * Every message says what is wrong and, where there is one, what to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include "debug.h"
#include "error.h"

static _Thread_local int last_error;
static _Thread_local char last_detail[256];

int fm_last_error(void)
{
    return last_error;
}

const char *fm_last_error_detail(void)
{
    return last_detail[0] ? last_detail : fm_strerror(last_error);
}

void fm__set_last_error(int err)
{
    last_error = err;
    last_detail[0] = 0;
    if (err)
        errno = fm__errno_of(err);
}

void fm__set_last_detail(int err, const char *detail)
{
    fm__set_last_error(err);
    if (detail && detail[0])
        snprintf(last_detail, sizeof last_detail, "%s: %s", fm_strerror(err), detail);
}

int fm__errno_of(int err)
{
    if (err >= 0)
        return err;
    if (err == FM_ELOCKED)
        return EBUSY;
    if (err == FM_ECORRUPT)
        return EIO;
    if (err == FM_EFORKED)
        return EPERM;
    return EINVAL;
}

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
    case FM_EFORKED:
        return "The arena handle was inherited through fork(): a child may only fm_close() it (which only unmaps); open the file anew once the parent has closed it";
    default:
        if (err > 0)
            return strerror(err);
        return "Unknown fmalloc error";
    }
}

void fm__report(struct fm_info *fi, fm_error_handler fn, void *arg, int err, const char *msg)
{
    if (fn) {
        fn(fi, err, msg, arg);
        return;
    }
    fprintf(stderr, "fmalloc: %s\n", msg);
    abort();
}

void fm__assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "fmalloc: internal assertion failed: %s (%s:%d)\n", what, file, line);
    abort();
}
