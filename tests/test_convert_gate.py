

def test_layer_names_from_tflite_tensor_names():
    from convert.diagnosis import layer_name

    assert layer_name("m_1/mobilenetv2_0.35_96_1/block_9_project_BN_1/batchnorm/add_1;m_1/x_1/convolution") == \
        "block_9_project_BN"
    assert layer_name("tiny_1/outlier_1/BiasAdd;tiny_1/outlier_1/convolution") == "outlier"
    assert layer_name("StatefulPartitionedCall_1:0") == "StatefulPartitionedCall_1:0"
