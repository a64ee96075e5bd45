/*
 * registry-calls.c - drives every ClusterReg* call of libclusapi against a live node and prints
 * one line per check; the Swift test compares the output. Arguments: ENDPOINT.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "clusapi.h"

static int failures = 0;

static void check(const char *what, long got, long want)
{
    printf("%s %s (%ld)\n", got == want ? "ok" : "FAIL", what, got);
    if (got != want) failures++;
}

int main(int argc, char *argv[])
{
    WCHAR endpoint[256];
    setlocale(LC_ALL, "");
    if (argc < 2 || mbstowcs(endpoint, argv[1], 256) == (size_t)-1) return 2;

    check("OpenCluster of a dead endpoint fails", OpenCluster(L"127.0.0.1:1") == NULL, 1);
    check("GetLastError is ERROR_CLUSTER_NODE_DOWN", GetLastError(), ERROR_CLUSTER_NODE_DOWN);

    HCLUSTER cluster = OpenCluster(endpoint);
    check("OpenCluster", cluster != NULL, 1);
    HKEY root = GetClusterKey(cluster, KEY_ALL_ACCESS);
    check("GetClusterKey", root != NULL, 1);

    HKEY web = NULL;
    DWORD disposition = 0;
    check("ClusterRegCreateKey", ClusterRegCreateKey(root, L"Resources\\Web", 0, KEY_ALL_ACCESS, NULL, &web, &disposition), ERROR_SUCCESS);
    check("disposition created", disposition, REG_CREATED_NEW_KEY);
    HKEY again = NULL;
    ClusterRegCreateKey(root, L"Resources\\Web", 0, KEY_ALL_ACCESS, NULL, &again, &disposition);
    check("disposition opened", disposition, REG_OPENED_EXISTING_KEY);
    check("ClusterRegCloseKey", ClusterRegCloseKey(again), ERROR_SUCCESS);
    check("ClusterRegCloseKey twice", ClusterRegCloseKey(again), ERROR_INVALID_HANDLE);

    /* REG_SZ "héllo" in UTF-16LE with its NUL. */
    const BYTE sz[] = {'h', 0, 0xE9, 0, 'l', 0, 'l', 0, 'o', 0, 0, 0};
    check("ClusterRegSetValue REG_SZ", ClusterRegSetValue(web, L"Name", REG_SZ, sz, sizeof sz), ERROR_SUCCESS);
    DWORD port = 8080;
    check("ClusterRegSetValue REG_DWORD", ClusterRegSetValue(web, L"Port", REG_DWORD, (const BYTE *)&port, 4), ERROR_SUCCESS);
    check("ClusterRegSetValue REG_DWORD of 3 bytes", ClusterRegSetValue(web, L"Bad", REG_DWORD, (const BYTE *)&port, 3), ERROR_INVALID_PARAMETER);
    /* A size that cannot be the buffer's is refused before anything is read from it. */
    check("ClusterRegSetValue cbData past any value", ClusterRegSetValue(web, L"Bad", REG_BINARY, (const BYTE *)&port, 0xFFFFFFFFu), ERROR_INVALID_PARAMETER);
    check("ClusterRegSetValue NULL data with a size", ClusterRegSetValue(web, L"Bad", REG_BINARY, NULL, 5), ERROR_INVALID_PARAMETER);
    check("ClusterRegSetValue NULL data, size 0", ClusterRegSetValue(web, L"Empty", REG_BINARY, NULL, 0), ERROR_SUCCESS);
    check("ClusterRegDeleteValue Empty", ClusterRegDeleteValue(web, L"Empty"), ERROR_SUCCESS);

    DWORD type = 0, size = 0;
    check("ClusterRegQueryValue size only", ClusterRegQueryValue(web, L"name", &type, NULL, &size), ERROR_SUCCESS);
    check("size", size, sizeof sz);
    check("type", type, REG_SZ);
    BYTE small[4];
    size = sizeof small;
    check("ClusterRegQueryValue small buffer", ClusterRegQueryValue(web, L"Name", &type, small, &size), ERROR_MORE_DATA);
    BYTE buffer[64];
    size = sizeof buffer;
    check("ClusterRegQueryValue", ClusterRegQueryValue(web, L"Name", &type, buffer, &size), ERROR_SUCCESS);
    check("same bytes", size == sizeof sz && memcmp(buffer, sz, sizeof sz) == 0, 1);
    check("ClusterRegQueryValue missing", ClusterRegQueryValue(web, L"Nope", &type, buffer, &size), ERROR_FILE_NOT_FOUND);

    WCHAR name[64];
    DWORD chars = 64;
    check("ClusterRegEnumKey 0", ClusterRegEnumKey(root, 0, name, &chars, NULL), ERROR_SUCCESS);
    check("ClusterRegEnumKey name", wcscmp(name, L"Resources"), 0);
    chars = 64;
    check("ClusterRegEnumKey 1", ClusterRegEnumKey(root, 1, name, &chars, NULL), ERROR_NO_MORE_ITEMS);
    chars = 2;
    check("ClusterRegEnumKey small buffer", ClusterRegEnumKey(root, 0, name, &chars, NULL), ERROR_MORE_DATA);
    check("needed chars", chars, 9);
    chars = 64;
    size = sizeof buffer;
    check("ClusterRegEnumValue 1", ClusterRegEnumValue(web, 1, name, &chars, &type, buffer, &size), ERROR_SUCCESS);
    check("ClusterRegEnumValue 1 is Port", wcscmp(name, L"Port") == 0 && type == REG_DWORD && size == 4, 1);
    chars = 64;
    check("ClusterRegEnumValue 2", ClusterRegEnumValue(web, 2, name, &chars, &type, buffer, &size), ERROR_NO_MORE_ITEMS);

    HREGBATCH batch = NULL;
    check("ClusterRegCreateBatch", ClusterRegCreateBatch(root, &batch), ERROR_SUCCESS);
    ClusterRegBatchAddCommand(batch, CLUSREG_CREATE_KEY, L"Groups\\G1", 0, NULL, 0);
    DWORD one = 1;
    ClusterRegBatchAddCommand(batch, CLUSREG_SET_VALUE, L"State", REG_DWORD, &one, 4);
    ClusterRegBatchAddCommand(batch, CLUSREG_DELETE_VALUE, L"Missing", 0, NULL, 0);
    INT failed = -7;
    check("ClusterRegCloseBatch commit", ClusterRegCloseBatch(batch, TRUE, &failed), ERROR_SUCCESS);
    HKEY g1 = NULL;
    check("ClusterRegOpenKey batch key", ClusterRegOpenKey(root, L"groups\\g1", KEY_READ, &g1), ERROR_SUCCESS);
    size = sizeof buffer;
    check("batch value", ClusterRegQueryValue(g1, L"State", &type, buffer, &size), ERROR_SUCCESS);

    /* A batch whose second command fails changes nothing and names the command. */
    ClusterRegCreateBatch(root, &batch);
    ClusterRegBatchAddCommand(batch, CLUSREG_CREATE_KEY, L"Groups\\G2", 0, NULL, 0);
    ClusterRegBatchAddCommand(batch, CLUSREG_DELETE_KEY, L"Groups\\G2", 0, NULL, 0);
    ClusterRegBatchAddCommand(batch, CLUSREG_SET_VALUE, L"Orphan", REG_DWORD, &one, 4);
    check("failing batch", ClusterRegCloseBatch(batch, TRUE, &failed), ERROR_INVALID_PARAMETER);
    check("failed command", failed, 2);
    HKEY g2 = NULL;
    check("nothing of the failed batch", ClusterRegOpenKey(root, L"Groups\\G2", KEY_READ, &g2), ERROR_FILE_NOT_FOUND);

    /* Batch commands read data the way single calls do: NULL with a size, or a size past any
       value, is refused at once and fails the batch at commit, naming the command. */
    ClusterRegCreateBatch(root, &batch);
    ClusterRegBatchAddCommand(batch, CLUSREG_CREATE_KEY, L"Groups\\G3", 0, NULL, 0);
    check("batch NULL data with a size", ClusterRegBatchAddCommand(batch, CLUSREG_SET_VALUE, L"V", REG_BINARY, NULL, 5), ERROR_INVALID_PARAMETER);
    check("batch with NULL data fails", ClusterRegCloseBatch(batch, TRUE, &failed), ERROR_INVALID_PARAMETER);
    check("batch failed command", failed, 1);
    ClusterRegCreateBatch(root, &batch);
    check("batch cbData past any value", ClusterRegBatchAddCommand(batch, CLUSREG_SET_VALUE, L"V", REG_BINARY, &one, 0xFFFFFFFFu), ERROR_INVALID_PARAMETER);
    ClusterRegCloseBatch(batch, FALSE, &failed);
    HKEY g3 = NULL;
    check("nothing of the refused batch", ClusterRegOpenKey(root, L"Groups\\G3", KEY_READ, &g3), ERROR_FILE_NOT_FOUND);

    check("ClusterRegDeleteKey with subkeys", ClusterRegDeleteKey(root, L"Groups"), ERROR_ACCESS_DENIED);
    check("ClusterRegDeleteValue", ClusterRegDeleteValue(web, L"Port"), ERROR_SUCCESS);
    check("ClusterRegDeleteValue missing", ClusterRegDeleteValue(web, L"Port"), ERROR_FILE_NOT_FOUND);
    check("ClusterRegDeleteKey leaf", ClusterRegDeleteKey(root, L"Groups\\G1"), ERROR_SUCCESS);

    ClusterRegCloseKey(g1);
    ClusterRegCloseKey(web);
    ClusterRegCloseKey(root);
    check("CloseCluster", CloseCluster(cluster), TRUE);
    check("BackupClusterDatabase on a closed handle", BackupClusterDatabase(cluster, L"/tmp/x"), ERROR_INVALID_HANDLE);
    printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
