#!/usr/bin/env bash
# GPU machine, after .gpu/unpack.sh: the engine tests on CUDA with the revised shape-session test, and the server
# benchmark on the 16-core host with 4 ORT intra-op threads (does leaving cores to HTTP close the gap?).
source bench/gpu/env.sh
echo "== engine tests, OSPREY_TEST_EP=cuda"
run_engine_tests_cuda
tail -c 60000 /tmp/engine-tests.log > "$OUT/engine-tests-cuda-h100-run2.log"
echo "== server vs engine alone, CPU EP, 16 cores, built engine, 4 intra-op threads"
timeout 300 node --import tsx bench/server-throughput.ts --seconds 12 --warmup-seconds 3 --rounds 5 --input uint8 --output topk --intra-op 4 --out "$OUT/server-throughput-cpu16-uint8-topk-intra-op-4.json" 2>&1 | grep -v "npm warn" | tail -2
