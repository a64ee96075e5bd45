/*
 * restore-call.c - calls RestoreClusterDatabase(argv[1], argv[2] == "force", argv[3] or NULL)
 * and prints the result code. The data directory comes from $CLUSDB_DATA_DIR.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "clusapi.h"

int main(int argc, char *argv[])
{
    WCHAR path[4096], quorum[4096];
    setlocale(LC_ALL, "");
    if (argc < 3 || mbstowcs(path, argv[1], 4096) == (size_t)-1) return 2;
    if (argc > 3 && mbstowcs(quorum, argv[3], 4096) == (size_t)-1) return 2;
    DWORD result = RestoreClusterDatabase(path, strcmp(argv[2], "force") == 0, argc > 3 ? quorum : NULL);
    printf("%u\n", result);
    return result == ERROR_SUCCESS ? 0 : 1;
}
