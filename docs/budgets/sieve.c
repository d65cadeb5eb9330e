#include <stdio.h>
#include <stdlib.h>
int main(void){ int N=20000000; unsigned char*p=malloc(N+1); for(int i=0;i<=N;i++)p[i]=1; p[0]=p[1]=0;
for(long i=2;i*i<=N;i++) if(p[i]) for(long j=i*i;j<=N;j+=i)p[j]=0; int c=0; for(int i=0;i<=N;i++)c+=p[i]; printf("%d\n",c);}
