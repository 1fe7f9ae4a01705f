// Original file: grove.proto

import type { Long } from '@grpc/proto-loader';

export interface ImagePullProgress {
  'image'?: (string);
  'layersDone'?: (number);
  'layersTotal'?: (number);
  'bytesDone'?: (number | string | Long);
  'bytesTotal'?: (number | string | Long);
}

export interface ImagePullProgress__Output {
  'image': (string);
  'layersDone': (number);
  'layersTotal': (number);
  'bytesDone': (string);
  'bytesTotal': (string);
}
