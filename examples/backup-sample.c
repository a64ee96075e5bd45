/*
 * backup-sample.c - the static backup routine of the BackupClusterDatabase documentation,
 * ported to Linux and ClusDB.
 *
 * The original hard-codes the cluster name and a UNC path; here they are the first two
 * arguments, with the original's values as the defaults. WCHAR is wchar_t (UTF-32 on Linux), so
 * the arguments are converted with mbstowcs under the user's locale.
 *
 * Build and run:
 *   swift build --product clusapi
 *   cc examples/backup-sample.c -I include -L .build/debug -lclusapi -o backup-sample
 *   LD_LIBRARY_PATH=.build/debug ./backup-sample 127.0.0.1:7400 /var/backups/clusdb/19991215
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#include "clusapi.h"

int main(int argc, char *argv[])
{
    HCLUSTER hCluster     = NULL;
    WCHAR szClusterName[256] = L"CLUSTER_NAME";
    WCHAR szPath[4096]       = L"/var/backups/clusdb/19991215";
    DWORD dwResult        = ERROR_SUCCESS;

    setlocale(LC_ALL, "");
    if( argc > 1 && mbstowcs( szClusterName, argv[1], 256 ) == (size_t)-1 )
        return 2;
    if( argc > 2 && mbstowcs( szPath, argv[2], 4096 ) == (size_t)-1 )
        return 2;

    if( ( hCluster = OpenCluster( szClusterName ) ) != NULL )
    {
        dwResult = BackupClusterDatabase( hCluster, szPath );
        CloseCluster( hCluster );
    }
    else
    {
        dwResult = GetLastError();
    }

    if( dwResult == ERROR_SUCCESS )
    {
        wprintf( L"\nDone. The cluster database has been backed up to %ls. ", szPath );
        wprintf( L"The backup consists of the following files:\n    chk????.tmp\n"
                 L"    quolog.log\n    *.cpt\n    *.cpr\n\n" );
        return 0;
    }
    else
    {
        wprintf( L"The operation failed (%d)\n", dwResult );
        return 1;
    }
}
