#include <stdio.h>
int main(void){ long long s=0; for(long long i=0;i<300000000LL;i++){ s=(s+i*i)%1000000007LL;} printf("%lld\n",s); }
