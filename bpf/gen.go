package bpf

//go:generate go tool bpf2go -tags linux -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -type xdpc_config -type xdpc_counter -type xdpc_pair_key -type xdpc_pair_val -type xdpc_gen xdp xdp.c
