/*
 * test_version.c -- fm_version(): the running library's version, as the
 * header it was built with says, each out-parameter optional.
 */
#include <fmalloc.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

int main(void)
{
    int major = -1, minor = -1, patch = -1, format = -1;
    const char *v = fm_version(&major, &minor, &patch, &format);
    require_true(v != NULL);
    printf("fm_version: \"%s\" %d.%d.%d, file format %d\n", v, major, minor, patch, format);
    expect_eq(major, FM_VERSION_MAJOR);
    expect_eq(minor, FM_VERSION_MINOR);
    expect_eq(patch, FM_VERSION_PATCH);
    expect_eq(format, FM_FORMAT_VERSION);
    expect_true(strcmp(v, FM_VERSION_STRING) == 0);

    /* the string spells the three numbers */
    char spelled[32];
    snprintf(spelled, sizeof spelled, "%d.%d.%d", major, minor, patch);
    expect_true(strcmp(v, spelled) == 0);

    /* every out-parameter may be NULL; the string is the same static one */
    expect_true(fm_version(NULL, NULL, NULL, NULL) == v);
    int only_format = -1;
    expect_true(fm_version(NULL, NULL, NULL, &only_format) == v);
    expect_eq(only_format, FM_FORMAT_VERSION);
    return harness_done();
}
