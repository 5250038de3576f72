#include <fftw3.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
void run(int rank,int*n,const char*label){
  long total=1; for(int i=0;i<rank;i++) total*=n[i];
  long cpx=total/n[rank-1]*(n[rank-1]/2+1);
  float*in=fftwf_malloc(sizeof(float)*total); fftwf_complex*out=fftwf_malloc(sizeof(fftwf_complex)*cpx);
  fftwf_plan p=fftwf_plan_dft_r2c(rank,n,in,out,FFTW_ESTIMATE);
  fftwf_plan q=fftwf_plan_dft_c2r(rank,n,out,in,FFTW_ESTIMATE);
  for(long i=0;i<total;i++) in[i]=rand()/(float)RAND_MAX;
  double best=1e9;
  for(int r=0;r<20;r++){double t=now(); fftwf_execute(p); fftwf_execute(q); double d=now()-t; if(d<best)best=d;}
  printf("%-14s %8ld elems  r2c+c2r %.2f ms  %.2f ns/elem\n",label,total,best*1e3,best*1e9/total);
}
int main(){
  int a[2]={2048,320}; run(2,a,"2048x320");
  int a2[2]={320,2048}; run(2,a2,"320x2048");
  int b[3]={64,256,40}; run(3,b,"64x256x40");
  int c[3]={40,64,256}; run(3,c,"40x64x256");
  int d[3]={64,40,256}; run(3,d,"64x40x256");
  int e[3]={16,96,24}; run(3,e,"16x96x24");
  int f[3]={24,16,96}; run(3,f,"24x16x96");
  return 0;
}
