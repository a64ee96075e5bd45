-- clusdb_put.lua: the shared etcd_put.lua write load, pointed at ClusDB's set-value endpoint.
-- Same keys, same 256-byte values, same latency accounting; only the request body differs:
-- etcd's /cluster/resources/<n>/param becomes key cluster\resources\<n>, value "param".
-- ETCD_PUT_LUA names the shared script (Benchmarks/run.sh sets it).
dofile(os.getenv("ETCD_PUT_LUA"))

PATH = "/v1/registry/set-value"
make_body = function(n, i)
  return '{"key":"cluster\\\\resources\\\\' .. n .. '","name":"param","type":"REG_SZ","data":"'
    .. pool_raw[i] .. '","createKey":true}'
end
