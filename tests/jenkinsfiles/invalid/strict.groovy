// expect: 24:9 `agent` takes one type, found `label` and `docker`
// expect: 26:5 `environment` is empty: set at least one variable (NAME = 'value'), or remove the section
// expect: 29:9 option `timeout` appears twice
// expect: 30:15 retry count is out of range: at most 2147483647
// expect: 33:9 parameter `string` takes arguments, not a block: string(name: '…', …)
// expect: 37:9 trigger `cron` appears twice
// expect: 41:23 option `buildDiscarder` applies to the whole pipeline: move it to the pipeline's `options`
// expect: 44:17 environment variable `X` is set twice
// expect: 47:27 `sh` has no parameter `scrpt` (did you mean `script`?); it takes `script`, `returnStdout`, `returnStatus`, `encoding`, `label`
// expect: 48:50 `sh`: `returnStdout:` takes true or false
// expect: 49:41 `sh`: parameter `script:` is given twice
// expect: 50:23 `sleep`: `time` takes a whole number from 0 to 2147483647
// expect: 51:27 `echo` takes 1 argument without a name
// expect: 55:13 `steps` of stage `Empty` is empty: add at least one step
// expect: 60:21 `parallel` cannot be nested inside `parallel` or `matrix`: only one level of parallel stages is allowed
// expect: 65:21 `matrix` cannot be nested inside `parallel` or `matrix`: only one level of parallel stages is allowed
// expect: 74:13 `when` appears twice in stage `Twice`
// expect: 79:17 `axes` is empty: a matrix needs at least one axis { name '…'; values '…', '…' }
// expect: 80:17 `excludes` is empty: add an exclude { axis { … } }, or remove the section
// expect: 87:9 post condition `always` appears twice
pipeline {
    agent {
        label 'linux'
        docker 'node:22'
    }
    environment { }
    options {
        timeout(time: 1, unit: 'HOURS')
        timeout(time: 2, unit: 'HOURS')
        retry(99999999999)
    }
    parameters {
        string(name: 'A') { description 'x' }
    }
    triggers {
        cron('H 4 * * *')
        cron('H 5 * * *')
    }
    stages {
        stage('Build') {
            options { buildDiscarder(logRotator(numToKeepStr: '5')) }
            environment {
                X = 'a'
                X = 'b'
            }
            steps {
                sh scrpt: 'make'
                sh script: 'make', returnStdout: 'yes'
                sh script: 'a', script: 'b'
                sleep 'soon'
                echo 'a', 'b'
            }
        }
        stage('Empty') {
            steps { }
        }
        stage('Fan out') {
            parallel {
                stage('Inner') {
                    parallel {
                        stage('Deeper') { steps { echo 'x' } }
                    }
                }
                stage('Cells') {
                    matrix {
                        axes { axis { name 'OS'; values 'linux' } }
                        stages { stage('Cell') { steps { echo 'c' } } }
                    }
                }
            }
        }
        stage('Twice') {
            when { branch 'main' }
            when { branch 'dev' }
            steps { echo 't' }
        }
        stage('Matrix') {
            matrix {
                axes { }
                excludes { }
                stages { stage('M') { steps { echo 'm' } } }
            }
        }
    }
    post {
        always { echo 'a' }
        always { echo 'b' }
    }
}
