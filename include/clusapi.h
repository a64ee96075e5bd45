/*
 * clusapi.h - the C interface of ClusDB (libclusapi.so), with the signatures of the Windows
 * cluster API functions it implements: OpenCluster, CloseCluster, BackupClusterDatabase,
 * RestoreClusterDatabase, GetLastError, GetClusterKey and the ClusterReg* calls.
 *
 * Strings are wide strings as on Windows (LPCWSTR), which on Linux means const wchar_t *
 * (UTF-32). Registry data (lpData) is in the Win32 form: REG_SZ and REG_EXPAND_SZ as UTF-16LE
 * with a terminating NUL, REG_MULTI_SZ as UTF-16LE strings each NUL-terminated plus a final
 * NUL, REG_DWORD and REG_QWORD little-endian, REG_BINARY and REG_NONE as given.
 *
 * Build a program:  cc prog.c -I include -lclusapi
 * Every function is safe to call from any thread; a handle is used by one thread at a time.
 */
#ifndef CLUSAPI_H
#define CLUSAPI_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t DWORD;
typedef int32_t LONG;
typedef int BOOL;
typedef int INT;
typedef uint8_t BYTE;
typedef BYTE *LPBYTE;
typedef DWORD *LPDWORD;
typedef DWORD REGSAM;
typedef wchar_t WCHAR;
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;
typedef const void *LPCVOID;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* Opaque handles. */
typedef struct _HCLUSTER *HCLUSTER;
typedef struct _HKEY *HKEY;
typedef HKEY *PHKEY;
typedef struct _HREGBATCH *HREGBATCH;
typedef HREGBATCH *PHREGBATCH;

/* Accepted for source compatibility and ignored (Linux has no ACLs on cluster keys). */
typedef struct _SECURITY_ATTRIBUTES { DWORD nLength; void *lpSecurityDescriptor; BOOL bInheritHandle; } SECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;
typedef struct _FILETIME { DWORD dwLowDateTime; DWORD dwHighDateTime; } FILETIME, *PFILETIME;

/* Win32 error codes ClusDB returns. */
#define ERROR_SUCCESS                      0
#define ERROR_FILE_NOT_FOUND               2
#define ERROR_PATH_NOT_FOUND               3
#define ERROR_ACCESS_DENIED                5
#define ERROR_INVALID_HANDLE               6
#define ERROR_NOT_ENOUGH_MEMORY            8
#define ERROR_INVALID_DATA                 13
#define ERROR_SHARING_VIOLATION            32
#define ERROR_INVALID_PARAMETER            87
#define ERROR_DISK_FULL                    112
#define ERROR_CALL_NOT_IMPLEMENTED         120
#define ERROR_BUSY                         170
#define ERROR_ALREADY_EXISTS               183
#define ERROR_MORE_DATA                    234
#define ERROR_NO_MORE_ITEMS                259
#define ERROR_DIRECTORY                    267
#define ERROR_CLUSTER_SHUTTING_DOWN        5022
#define ERROR_CLUSTERLOG_CORRUPT           5029
#define ERROR_CLUSTER_NODE_DOWN            5050
#define ERROR_CLUSTER_NODE_UP              5056
#define ERROR_QUORUM_DISK_NOT_FOUND        5086
#define ERROR_DATABASE_BACKUP_CORRUPT      5087
#define ERROR_CLUSTER_INSTANCE_ID_MISMATCH 5893

/* Value types. */
#define REG_NONE       0
#define REG_SZ         1
#define REG_EXPAND_SZ  2
#define REG_BINARY     3
#define REG_DWORD      4
#define REG_MULTI_SZ   7
#define REG_QWORD      11

/* ClusterRegCreateKey dispositions. */
#define REG_CREATED_NEW_KEY     1
#define REG_OPENED_EXISTING_KEY 2

/* Access rights: accepted and ignored. */
#define KEY_READ       0x20019
#define KEY_WRITE      0x20006
#define KEY_ALL_ACCESS 0xF003F
#define MAXIMUM_ALLOWED 0x02000000

/* Batch commands (ClusterRegBatchAddCommand). For CLUSREG_SET_VALUE, dwOptions is the type. */
typedef enum _CLUSTER_REG_COMMAND {
    CLUSREG_COMMAND_NONE = 0,
    CLUSREG_SET_VALUE = 1,
    CLUSREG_CREATE_KEY = 2,
    CLUSREG_DELETE_KEY = 3,
    CLUSREG_DELETE_VALUE = 4
} CLUSTER_REG_COMMAND;

/* Clusters. lpszClusterName NULL or L"" is the local default cluster ($CLUSDB_CLUSTER or
   127.0.0.1:7400); otherwise host:port[,host:port...] or a name from the clusters file.
   On failure NULL is returned and GetLastError() tells why. */
HCLUSTER OpenCluster(LPCWSTR lpszClusterName);
BOOL CloseCluster(HCLUSTER hCluster);

/* The error of the last failed call on this thread that returns a handle or BOOL. */
DWORD GetLastError(void);

/* Writes a backup of the cluster database into the directory lpszPathName on this machine
   (streamed from the cluster; the layout of the original: chk????.tmp, quolog.log, the
   completion marker .clusbackup.dat written last, plus clusbackup.manifest). */
DWORD BackupClusterDatabase(HCLUSTER hCluster, LPCWSTR lpszPathName);

/* Restores the backup in lpszPathName into this machine's stopped node: the data directory is
   $CLUSDB_DATA_DIR, or ./clusdb-data. lpszQuorumDriveLetter (NULL or L"" for none) is, on Linux,
   a new or empty directory to hold the restored checkpoint and quorum log. */
DWORD RestoreClusterDatabase(LPCWSTR lpszPathName, BOOL bForce, LPCWSTR lpszQuorumDriveLetter);

/* The cluster registry. The root key comes from GetClusterKey; every key handle is closed with
   ClusterRegCloseKey. */
HKEY GetClusterKey(HCLUSTER hCluster, REGSAM samDesired);
LONG ClusterRegCreateKey(HKEY hKey, LPCWSTR lpszSubKey, DWORD dwOptions, REGSAM samDesired,
                         LPSECURITY_ATTRIBUTES lpSecurityAttributes, PHKEY phkResult, LPDWORD lpdwDisposition);
LONG ClusterRegOpenKey(HKEY hKey, LPCWSTR lpszSubKey, REGSAM samDesired, PHKEY phkResult);
LONG ClusterRegDeleteKey(HKEY hKey, LPCWSTR lpszSubKey);
LONG ClusterRegCloseKey(HKEY hKey);
DWORD ClusterRegSetValue(HKEY hKey, LPCWSTR lpszValueName, DWORD dwType, const BYTE *lpData, DWORD cbData);
LONG ClusterRegQueryValue(HKEY hKey, LPCWSTR lpszValueName, LPDWORD lpdwValueType, LPBYTE lpData, LPDWORD lpcbData);
DWORD ClusterRegDeleteValue(HKEY hKey, LPCWSTR lpszValueName);
LONG ClusterRegEnumKey(HKEY hKey, DWORD dwIndex, LPWSTR lpszName, LPDWORD lpcchName, PFILETIME lpftLastWriteTime);
DWORD ClusterRegEnumValue(HKEY hKey, DWORD dwIndex, LPWSTR lpszValueName, LPDWORD lpcchValueName,
                          LPDWORD lpdwType, LPBYTE lpData, LPDWORD lpcbData);

/* Atomic write batches: all commands or none. */
LONG ClusterRegCreateBatch(HKEY hKey, PHREGBATCH pHREGBATCH);
LONG ClusterRegBatchAddCommand(HREGBATCH hRegBatch, CLUSTER_REG_COMMAND dwCommand, LPCWSTR wzName, DWORD dwOptions,
                               LPCVOID lpData, DWORD cbData);
LONG ClusterRegCloseBatch(HREGBATCH hRegBatch, BOOL bCommit, INT *failedCommandNumber);

#ifdef __cplusplus
}
#endif

#endif /* CLUSAPI_H */
